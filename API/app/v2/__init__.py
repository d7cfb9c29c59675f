"""The Open Inference Protocol (KServe v2) with Triton's binary tensor data extension: the
request and its tensors to rows (tensors.py), predictions to response tensors (outputs.py).
The endpoints are in app/api/routes/v2.py."""
