"""C code generation: model.h / model.c / model_kernels.c / metadata.json."""
