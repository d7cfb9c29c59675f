"""Model state: what MODELS_DIR holds (files), how a file becomes a runtime (loading,
runtimes), and the registry that keeps the loaded ones."""
