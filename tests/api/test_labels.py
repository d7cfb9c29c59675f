"""Labels are right for real birds: each model names real Adelie, Chinstrap and Gentoo."""

import pytest
from support.api import body_from_row
from support.models import penguins

from penguin_contract import SPECIES

MODELS = ["randomforest", "svm", "gradientboosting"]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("species", sorted(SPECIES))
def test_the_first_birds_of_each_species_are_named_right(client, model, species):
    data = penguins()
    birds = data[data["species"] == species].head(5)

    names = [
        client.post(f"/classify/{model}", json=body_from_row(bird)).json()["species_name"]
        for _, bird in birds.iterrows()
    ]

    assert names == [SPECIES[species]] * 5


@pytest.mark.parametrize("model", MODELS)
def test_nearly_every_bird_of_the_data_set_is_named_right(client, model):
    data = penguins()
    instances = [body_from_row(bird) for _, bird in data.iterrows()]

    response = client.post(f"/classify/{model}/batch", json={"instances": instances})

    predicted = [p["species_id"] for p in response.json()["predictions"]]
    for species in SPECIES:
        mask = data["species"] == species
        right = sum(p == species for p, m in zip(predicted, mask, strict=True) if m)
        assert right / mask.sum() >= 0.95, (model, SPECIES[species])
