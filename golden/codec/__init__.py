"""The weight codec: quantization, K-means sharing, remap search, the container format and
the pipeline that ties them together."""
