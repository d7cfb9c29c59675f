"""The Open Inference Protocol (KServe v2) over REST, with Triton's binary tensor data extension.

schemas: the protocol's JSON objects; tensors: request tensors to an [N, 7] float64 array in
FEATURES order and predictions to response tensors; errors: the protocol's {"error": ...} body.
The HTTP layer is app/api/routes/v2.py; predicting, logging and counting stay in the service.
"""
