"""The Open Inference Protocol (KServe v2) over REST, with Triton's binary tensor data extension.

schemas: the protocol's JSON objects; tensors: request tensors to an [N, 7] float64 array in
FEATURES order; outputs: predictions to response tensors. The HTTP layer is
app/api/routes/v2.py; predicting, logging and counting are app.predict's, as for /classify.
"""
