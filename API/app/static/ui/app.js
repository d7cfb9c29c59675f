// The web page at GET /: classify with every model, the models table, recent predictions.
// Plain DOM code, no framework. Everything it asks for comes from this API's own origin.
// PENGUIN_CONTRACT (contract.js) is generated from the data contract; see app/ui_contract.py.
"use strict";

(() => {
  const CONTRACT = PENGUIN_CONTRACT;
  const POLL_MS = 2000;
  const RECENT_LIMIT = 20;
  const SEX_LABELS = { female: "hembra", male: "macho" };
  const SPECIES_NAMES = Object.values(CONTRACT.species);
  const STATUS_LABELS = { ok: "disponible", error: "error", incompatible: "incompatible" };
  const METRIC_KEYS = ["test_accuracy", "test_precision", "test_recall", "test_f1", "train_accuracy"];
  const numberFormat = new Intl.NumberFormat("es-ES", {
    minimumFractionDigits: 3,
    maximumFractionDigits: 3,
  });
  const percentFormat = new Intl.NumberFormat("es-ES", {
    style: "percent",
    minimumFractionDigits: 1,
    maximumFractionDigits: 1,
  });

  const byId = (id) => document.getElementById(id);

  // el("p", {className: "x", text: "hi", "aria-label": "y"}, child...) builds an element.
  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "className") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    node.append(...children.filter((child) => child !== null && child !== undefined));
    return node;
  }

  async function getJSON(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    return response.json();
  }

  function formatMetric(value) {
    return typeof value === "number" ? numberFormat.format(value) : "—";
  }

  function formatDate(iso) {
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString("es-ES");
  }

  const orDash = (value, format = String) =>
    value === undefined || value === null ? "—" : format(value);
  const yesNo = (value) => (value ? "sí" : "no");
  const numberCell = (text) => el("td", { className: "number", text });
  const messageRow = (columns, text) =>
    el("tr", {}, el("td", { colspan: columns, className: "muted", text }));

  // Repeat task every POLL_MS (never two at once); report failures in statusNode.
  function poll(task, statusNode) {
    const run = async () => {
      if (!document.hidden) {
        try {
          await task();
          statusNode.textContent = "";
        } catch (error) {
          statusNode.textContent = `No se pudo actualizar (${error.message}); se reintenta solo.`;
        }
      }
      setTimeout(run, POLL_MS);
    };
    run();
  }

  // ---- Models: the latest GET /models, shared by the table and the form. ----------------

  let latestModels = [];
  const modelListeners = [];

  async function refreshModels() {
    const listing = await getJSON("/models");
    latestModels = Array.isArray(listing.available_models) ? listing.available_models : [];
    for (const listener of modelListeners) listener(latestModels);
    return latestModels;
  }

  // The API marks the best model with `best`; before it did, best was the highest test_f1.
  function bestModelName(models) {
    const flagged = models.find((model) => model.best === true);
    if (flagged || models.some((model) => "best" in model)) return flagged ? flagged.name : null;
    let best = null;
    for (const model of models) {
      const f1 = model.metrics && model.metrics.test_f1;
      if (model.status === "ok" && typeof f1 === "number" && (!best || f1 > best.f1)) {
        best = { name: model.name, f1 };
      }
    }
    return best ? best.name : null;
  }

  // ---- Clasificar ---------------------------------------------------------------------------

  const form = byId("classify-form");

  function initRealBirds() {
    const select = byId("real-bird");
    for (const bird of CONTRACT.realBirds) {
      const sex = SEX_LABELS[CONTRACT.sexes[bird.sex]];
      const label =
        `${CONTRACT.species[bird.species]}: ${CONTRACT.islands[bird.island]}, ` +
        `${sex}, ${bird.year} (n.º ${bird.id})`;
      select.append(new Option(label, String(bird.id)));
    }
    select.addEventListener("change", () => {
      const bird = CONTRACT.realBirds.find((candidate) => String(candidate.id) === select.value);
      if (bird) fillForm(bird);
    });
  }

  function fillForm(bird) {
    for (const field of CONTRACT.fields) form.elements[field.name].value = String(bird[field.name]);
    clearErrors();
  }

  // The form's values as the API expects them; the API, not the browser, judges them.
  function readForm() {
    const body = {};
    for (const field of CONTRACT.fields) {
      const raw = form.elements[field.name].value.trim();
      if (raw === "") continue; // the API answers that the field is missing
      const number = Number(raw);
      body[field.name] = Number.isFinite(number) ? number : raw;
    }
    return body;
  }

  function clearErrors() {
    const formError = byId("form-error");
    formError.hidden = true;
    formError.textContent = "";
    for (const field of CONTRACT.fields) {
      const message = byId(`e-${field.name}`);
      message.hidden = true;
      message.textContent = "";
      form.elements[field.name].removeAttribute("aria-invalid");
    }
  }

  function showFormError(text) {
    const formError = byId("form-error");
    formError.textContent = text;
    formError.hidden = false;
  }

  // 422 {"detail": [{"field", "msg", ...}]}: each message next to its field.
  function showValidationErrors(body) {
    const issues = body && Array.isArray(body.detail) ? body.detail : [];
    const general = [];
    let firstInvalid = null;
    for (const issue of issues) {
      const control = issue.field ? form.elements[issue.field] : null;
      if (!control) {
        general.push(issue.msg);
        continue;
      }
      const message = byId(`e-${issue.field}`);
      message.textContent = message.textContent ? `${message.textContent} ${issue.msg}` : issue.msg;
      message.hidden = false;
      control.setAttribute("aria-invalid", "true");
      firstInvalid = firstInvalid || control;
    }
    if (general.length || !firstInvalid) {
      showFormError(general.join(" ") || "La API ha rechazado los datos del formulario.");
    }
    if (firstInvalid) firstInvalid.focus();
  }

  async function classifyWith(name, body) {
    try {
      const response = await fetch(`/classify/${encodeURIComponent(name)}`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body),
      });
      const data = await response.json().catch(() => null);
      return { name, status: response.status, body: data };
    } catch (error) {
      return { name, status: 0, body: { detail: `Sin respuesta de la API (${error.message})` } };
    }
  }

  async function onSubmit(event) {
    event.preventDefault();
    clearErrors();
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      let models = latestModels;
      try {
        models = await refreshModels();
      } catch (error) {
        // the last listing will do
      }
      const usable = models.filter((model) => model.status === "ok");
      if (!usable.length) {
        showFormError("No hay ningún modelo disponible: entrena uno en Jupyter (train.ipynb).");
        return;
      }
      const body = readForm();
      const answers = await Promise.all(usable.map((model) => classifyWith(model.name, body)));
      const invalid = answers.find((answer) => answer.status === 422);
      if (invalid) {
        showValidationErrors(invalid.body);
        renderAnswers([]);
        return;
      }
      renderAnswers(answers);
      refreshPredictions().catch(() => {});
    } finally {
      button.disabled = false;
    }
  }

  function renderAnswers(answers) {
    const list = byId("answers");
    const agreement = byId("agreement");
    list.replaceChildren();
    byId("answers-empty").hidden = answers.length > 0;
    agreement.hidden = answers.length === 0;
    if (!answers.length) return;
    const votes = new Map();
    for (const answer of answers) {
      if (answer.status !== 200) continue;
      const species = answer.body.species_name;
      votes.set(species, [...(votes.get(species) || []), answer.name]);
    }
    const ranked = [...votes.entries()].sort((a, b) => b[1].length - a[1].length);
    const majority = ranked.length ? ranked[0][0] : null;
    const unanimous = ranked.length === 1 && votes.get(majority).length === answers.length;
    for (const answer of answers) list.append(answerCard(answer, majority, unanimous));
    agreement.className = `agreement ${unanimous ? "all-agree" : "disagree"}`;
    agreement.textContent = agreementText(ranked, answers.length, unanimous);
  }

  function agreementText(ranked, total, unanimous) {
    if (unanimous) {
      const lead = total === 1 ? "El único modelo disponible dice" : `Los ${total} modelos coinciden:`;
      return `${lead} ${ranked[0][0]}.`;
    }
    const parts = ranked.map(([species, names]) => {
      const verb = names.length === 1 ? "dice" : "dicen";
      return `${names.join(", ")} ${verb} ${species}`;
    });
    return `Los modelos no coinciden: ${parts.join("; ") || "ninguno ha respondido"}.`;
  }

  function answerCard(answer, majority, unanimous) {
    const ok = answer.status === 200 && answer.body;
    const disagrees = ok && !unanimous && answer.body.species_name !== majority;
    const card = el("li", {
      className: `answer${ok ? "" : " failed"}${disagrees ? " disagrees" : ""}`,
      "data-model": answer.name,
    });
    const head = el("div", { className: "answer-head" }, el("h4", { text: answer.name }));
    if (ok && answer.body.runtime) {
      head.append(
        el("span", { className: "visually-hidden", text: "Motor:" }),
        el("span", {
          className: "badge badge-runtime",
          title: "Motor que respondió",
          text: answer.body.runtime,
        })
      );
    }
    card.append(head);
    if (!ok) {
      const detail = typeof (answer.body && answer.body.detail) === "string" ? answer.body.detail : "";
      card.append(el("p", { className: "error", text: `Error ${answer.status}. ${detail}` }));
      return card;
    }
    card.append(el("p", { className: "species", text: answer.body.species_name }));
    if (answer.body.model_version) {
      card.append(
        el("p", {
          className: "model-version mono",
          title: `Versión (SHA-256 del pickle): ${answer.body.model_version}`,
          text: `Versión ${answer.body.model_version.slice(0, 12)}`,
        })
      );
    }
    if (!unanimous) {
      const verdict = disagrees ? "No coincide con la mayoría" : "Coincide con la mayoría";
      card.append(el("p", { className: "verdict", text: verdict }));
    }
    card.append(probabilityList(answer.body.probabilities));
    return card;
  }

  function probabilityList(probabilities) {
    if (!probabilities) {
      return el("p", { className: "muted", text: "Este modelo no da probabilidades." });
    }
    const list = el("ul", { className: "probabilities", "aria-label": "Probabilidad por especie" });
    const names = SPECIES_NAMES.filter((name) => name in probabilities);
    for (const name of names) {
      const value = probabilities[name];
      const text = percentFormat.format(value);
      list.append(
        el(
          "li",
          {},
          el("span", { text: name }),
          el("progress", { max: 1, value, "aria-label": `${name}: ${text}` }),
          el("span", { className: "value", text })
        )
      );
    }
    return list;
  }

  // ---- Modelos ------------------------------------------------------------------------------

  const table = byId("models-table");
  const rows = new Map(); // model name -> {tbody, cells, details, model, version}
  const sortState = { key: "name", direction: 1 };

  function sortValue(model, key) {
    if (METRIC_KEYS.includes(key)) return model.metrics ? model.metrics[key] : null;
    return model[key];
  }

  function compareModels(a, b) {
    const x = sortValue(a, sortState.key);
    const y = sortValue(b, sortState.key);
    const missing = (value) => value === null || value === undefined;
    if (missing(x) !== missing(y)) return missing(x) ? 1 : -1; // missing values last
    if (!missing(x) && x !== y) {
      const order = typeof x === "number" ? x - y : String(x).localeCompare(String(y));
      if (order !== 0) return order * sortState.direction;
    }
    return a.name.localeCompare(b.name);
  }

  function initSorting() {
    for (const header of table.querySelectorAll("th[data-key]")) {
      header.querySelector("button").addEventListener("click", () => {
        const key = header.dataset.key;
        if (sortState.key === key) sortState.direction *= -1;
        else {
          sortState.key = key;
          sortState.direction = METRIC_KEYS.includes(key) ? -1 : 1; // best metric first
        }
        for (const other of table.querySelectorAll("th[data-key]")) {
          other.setAttribute("aria-sort", "none");
        }
        header.setAttribute("aria-sort", sortState.direction === 1 ? "ascending" : "descending");
        orderRows();
      });
    }
  }

  function createRow(name) {
    const cells = {};
    const main = el("tr", { className: "model-row" });
    cells.name = el("th", { scope: "row" });
    main.append(cells.name);
    for (const key of ["status", ...METRIC_KEYS.slice(0, 5), "trained_at", "runtime"]) {
      cells[key] = el("td", { className: METRIC_KEYS.includes(key) ? "number" : "" });
      main.append(cells[key]);
    }
    const body = el("div", { className: "details-body" });
    const details = el(
      "details",
      {},
      el("summary", { text: `Matriz de confusión y detalles de ${name}` }),
      body
    );
    const tbody = el(
      "tbody",
      { "data-model": name },
      main,
      el("tr", { className: "details-row" }, el("td", { colspan: 9 }, details))
    );
    const row = { tbody, cells, details, body, model: null, version: null, shown: null };
    details.addEventListener("toggle", () => {
      if (details.open) loadDetails(row);
    });
    rows.set(name, row);
    return row;
  }

  function updateRow(row, model, isBest) {
    const { cells } = row;
    cells.name.replaceChildren(el("span", { className: "mono", text: model.name }));
    if (isBest) {
      cells.name.append(" ", el("span", { className: "badge badge-best", text: "mejor" }));
    }
    row.tbody.classList.toggle("is-best", isBest);
    const healthy = model.status === "ok";
    cells.status.replaceChildren(
      el("span", {
        className: healthy ? "status-ok" : "status-bad",
        text: STATUS_LABELS[model.status] || model.status,
      })
    );
    if (model.reason) cells.status.append(el("span", { className: "reason", text: model.reason }));
    for (const key of METRIC_KEYS) {
      cells[key].textContent = formatMetric(model.metrics && model.metrics[key]);
    }
    const trainedAt = model.trained_at;
    cells.trained_at.replaceChildren(
      trainedAt ? el("time", { datetime: trainedAt, text: formatDate(trainedAt) }) : "—"
    );
    cells.runtime.replaceChildren(model.runtime || "—");
    if (model.runtime_reason) {
      cells.runtime.append(el("span", { className: "reason", text: model.runtime_reason }));
    }
    row.model = model;
    row.version = JSON.stringify(model);
    if (row.details.open && row.shown !== row.version) loadDetails(row);
  }

  function renderModels(models) {
    const best = bestModelName(models);
    const seen = new Set();
    for (const model of models) {
      seen.add(model.name);
      updateRow(rows.get(model.name) || createRow(model.name), model, model.name === best);
    }
    for (const [name, row] of rows) {
      if (!seen.has(name)) {
        row.tbody.remove();
        rows.delete(name);
      }
    }
    orderRows();
  }

  // Moves rows only when the order changes, so that focus inside the table is kept.
  function orderRows() {
    const wanted = [...rows.values()].sort((a, b) => compareModels(a.model, b.model));
    const current = [...table.tBodies];
    const same = wanted.length === current.length && wanted.every((row, i) => row.tbody === current[i]);
    if (!same) for (const row of wanted) table.append(row.tbody);
  }

  async function loadDetails(row) {
    const version = row.version;
    const name = row.model.name;
    row.shown = version;
    let detail = null;
    let versions = null;
    try {
      detail = await getJSON(`/models/${encodeURIComponent(name)}`);
      versions = await getJSON(`/models/${encodeURIComponent(name)}/versions`);
    } catch (error) {
      detail = detail || { error: error.message };
    }
    if (row.version !== version) return; // a newer listing arrived meanwhile
    const image = el("img", {
      // The query changes with the listing entry, so a retrained model's new PNG is fetched.
      src: `/models/${encodeURIComponent(name)}/confusion-matrix?v=${hash(version)}`,
      alt:
        `Matriz de confusión de ${name} en el conjunto de prueba ` +
        "(filas: especie real; columnas: especie predicha)",
      width: 400,
    });
    const missing = el("p", {
      className: "muted",
      text: "No hay matriz de confusión para este modelo.",
      hidden: true,
    });
    image.addEventListener("error", () => {
      image.hidden = true;
      missing.hidden = false;
    });
    row.body.replaceChildren(el("figure", {}, image, missing), detailList(detail));
    if (versions) row.body.append(historyTable(versions));
  }

  const DECISION_LABELS = { promoted: "Promovida", rejected: "Rechazada", rolled_back: "Vuelta atrás" };

  // GET /models/{name}/versions: the trainer's decisions, newest first; the served one marked.
  function historyTable(history) {
    const caption = el("caption", { text: "Historial de versiones (la más reciente arriba)" });
    if (!history.versions.length) {
      return el("p", { className: "muted", text: "Este modelo no tiene historial de versiones." });
    }
    const headings = ["Versión", "Servida", "Decisión", "Motivo", "Fecha", "Estimador", "test_f1", "test_f1 anterior"];
    const head = el("tr", {}, ...headings.map((text) => el("th", { scope: "col", text })));
    const body = history.versions.map((entry) =>
      el(
        "tr",
        { className: entry.served ? "served" : "", "data-version": entry.version },
        el("td", { className: "mono", title: entry.version, text: entry.version.slice(0, 12) }),
        el("td", { text: entry.served ? "✔ servida" : "" }),
        el("td", { text: DECISION_LABELS[entry.decision] || entry.decision }),
        el("td", { text: entry.reason }),
        el("td", { text: formatDate(entry.decided_at) }),
        el("td", { text: orDash(entry.estimator) }),
        el("td", { text: formatMetric(entry.metrics.test_f1) }),
        el("td", { text: formatMetric(entry.previous_metrics && entry.previous_metrics.test_f1) })
      )
    );
    return el("table", { className: "history" }, caption, el("thead", {}, head), el("tbody", {}, ...body));
  }

  function hash(text) {
    let value = 0;
    for (let i = 0; i < text.length; i += 1) value = (value * 31 + text.charCodeAt(i)) | 0;
    return (value >>> 0).toString(16);
  }

  function detailList(detail) {
    if (detail.error) {
      return el("p", { className: "error", text: `No se pudieron leer los detalles: ${detail.error}` });
    }
    const list = el("dl");
    const add = (term, value) => {
      if (value === undefined || value === null || value === "") return;
      list.append(el("dt", { text: term }), el("dd", { text: String(value) }));
    };
    const classes = Array.isArray(detail.classes)
      ? detail.classes.map((code) => `${code} ${CONTRACT.species[String(code)] || "?"}`).join(", ")
      : null;
    add("Clases", classes);
    add("Estimador", detail.estimator);
    add("Parámetros", detail.params ? JSON.stringify(detail.params) : null);
    const has = (key) => detail[key] !== undefined && detail[key] !== null;
    add("Probabilidades", has("probabilities") ? yesNo(detail.probabilities) : null);
    add("Motor", detail.runtime);
    add("Por qué scikit-learn", detail.runtime_reason);
    if (has("onnx")) {
      add("Gemelo ONNX", detail.onnx ? "sí" : `no (${detail.onnx_reason || "sin motivo"})`);
    }
    add("scikit-learn", detail.sklearn_version);
    add("Entrenado", has("trained_at") ? formatDate(detail.trained_at) : null);
    if (has("report_matches_file")) {
      const verb = detail.report_matches_file ? "describen" : "no describen";
      add("Métricas del informe", `${verb} este archivo`);
    }
    add("SHA-256", detail.sha256);
    add("Tamaño", has("file_size") ? `${detail.file_size.toLocaleString("es-ES")} bytes` : null);
    return has("per_class") ? el("div", {}, perClassTable(detail.per_class), list) : list;
  }

  // The trainer's per-class report on the test split (classification_report).
  function perClassTable(perClass) {
    const cell = (tag, text) => el(tag, { text });
    const score = (value) => value.toLocaleString("es-ES", { maximumFractionDigits: 3 });
    const head = el("tr", {}, ...["Especie", "Precisión", "Recall", "F1", "Casos"].map((t) => cell("th", t)));
    const body = Object.entries(perClass).map(([species, s]) =>
      el("tr", {}, cell("th", species), cell("td", score(s.precision)), cell("td", score(s.recall)),
        cell("td", score(s.f1)), cell("td", String(s.support))),
    );
    return el("table", { className: "per-class" },
      el("caption", { text: "Informe por clase (conjunto de prueba)" }),
      el("thead", {}, head), el("tbody", {}, ...body));
  }

  // ---- Predicciones -------------------------------------------------------------------------

  let shownPredictions = null;
  let shownStats = null;

  async function refreshPredictions() {
    const [recent, stats] = await Promise.all([
      getJSON(`/predictions/recent?limit=${RECENT_LIMIT}`),
      getJSON("/predictions/stats"),
    ]);
    const recentText = JSON.stringify(recent.predictions);
    if (recentText !== shownPredictions) {
      shownPredictions = recentText;
      renderRecent(recent.predictions);
    }
    const statsText = JSON.stringify(stats);
    if (statsText !== shownStats) {
      shownStats = statsText;
      renderStats(stats);
    }
  }

  function measures(input) {
    const sex = SEX_LABELS[CONTRACT.sexes[String(input.sex)]] || input.sex;
    return (
      `${CONTRACT.islands[String(input.island)] || input.island}; pico ${input.bill_length_mm} × ` +
      `${input.bill_depth_mm} mm; aleta ${input.flipper_length_mm} mm; ${input.body_mass_g} g; ` +
      `${sex}; ${input.year}`
    );
  }

  function renderRecent(predictions) {
    const body = byId("recent-body");
    if (!predictions.length) {
      body.replaceChildren(messageRow(7, "Todavía no hay predicciones."));
      return;
    }
    body.replaceChildren(
      ...predictions.map((prediction) => {
        const result = prediction.result;
        const probability = result.probabilities ? result.probabilities[result.species_name] : null;
        const when = new Date(prediction.timestamp);
        const clock = Number.isNaN(when.getTime()) ? prediction.timestamp : when.toLocaleTimeString("es-ES");
        return el(
          "tr",
          { "data-request-id": prediction.request_id },
          el("td", {}, el("time", { datetime: prediction.timestamp, text: clock })),
          el("td", { className: "mono", text: prediction.model }),
          el("td", { text: result.species_name }),
          el("td", { text: orDash(prediction.runtime) }),
          numberCell(orDash(probability, (p) => percentFormat.format(p))),
          el("td", { text: measures(prediction.input) }),
          numberCell(orDash(prediction.latency_ms, (ms) => `${ms.toFixed(1)} ms`))
        );
      })
    );
  }

  function renderStats(stats) {
    const head = byId("stats-head");
    head.replaceChildren(
      el("th", { scope: "col", text: "Modelo" }),
      ...SPECIES_NAMES.map((name) => el("th", { scope: "col", className: "number", text: name })),
      el("th", { scope: "col", className: "number", text: "Total" })
    );
    const perModel = new Map();
    for (const entry of stats.counts) {
      const counts = perModel.get(entry.model) || {};
      counts[entry.species] = entry.count;
      perModel.set(entry.model, counts);
    }
    const body = byId("stats-body");
    const rowsOut = [...perModel.keys()].sort().map((model) =>
      el(
        "tr",
        { "data-model": model },
        el("th", { scope: "row", className: "mono", text: model }),
        ...SPECIES_NAMES.map((name) => numberCell(String(perModel.get(model)[name] || 0))),
        numberCell(String(stats.by_model[model] || 0))
      )
    );
    rowsOut.push(
      el(
        "tr",
        { className: "total" },
        el("th", { scope: "row", text: "Total" }),
        ...SPECIES_NAMES.map((name) => numberCell(String(stats.by_species[name] || 0))),
        numberCell(String(stats.total))
      )
    );
    if (!stats.counts.length) {
      const columns = SPECIES_NAMES.length + 2;
      rowsOut.unshift(messageRow(columns, "Ninguna predicción desde que arrancó la API."));
    }
    body.replaceChildren(...rowsOut);
  }

  // ---- Start --------------------------------------------------------------------------------

  initRealBirds();
  initSorting();
  form.addEventListener("submit", onSubmit);
  modelListeners.push(renderModels);
  poll(refreshModels, byId("models-status"));
  poll(refreshPredictions, byId("predictions-status"));
})();
