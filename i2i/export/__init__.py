"""Export of trained generators to deployable formats (ONNX, TensorRT)."""
