"""Rate and accuracy of digits-trained MLP2 and LeNet-5 with each codec stage on or off
(the table in ``docs/codec.md``): no pruning, no retraining.

Each row stores the whole state dict in a model container (weights through the JPEG
codec, everything else losslessly) and measures the network decoded from its bytes; the
ratio counts every byte. "layers" counts the JPEG members against the fp32 weights they
hold; H is the summed 8x8-block entropy of those weights' samples (KiB) before and after
the remap.

Run: ``python -m bench.codec_stages`` (networks cached in ``cimcodec.home()/cache``).
"""

import copy

import torch

import cimcodec
from cimcodec.golden.codec import model as container
from cimcodec.golden.codec import pipeline, quant
from cimcodec.golden.ml.models import accuracy, digits, train_digits_net

ROWS = [(0, "none", 90), (16, "none", 90), (16, "none", 75), (16, "full", 75),
        (16, "split", 75), (16, "progressive", 75), (16, "auto", 75), (16, "none", 50),
        (8, "none", 50), (16, "none", 25)]


def row(model, state, data, clusters, remap, quality) -> dict:
    settings = {"quality": quality, "clusters": clusters, "remap": remap, "budget": 8}
    blob = container.compress(state, settings=settings)
    info = container.inspect(blob)
    net = copy.deepcopy(model)
    net.load_state_dict(container.decompress(blob), strict=True)
    jpeg = [e for e in info.entries if e.codec == "jpeg"]
    before = after = 0.0
    for e in jpeg:
        c = pipeline.compress_matrix(state[e.name].numpy(), pipeline.Settings(**settings))
        before, after = before + c.entropy_before, after + c.entropy_after
    return {"ratio": info.ratio, "accuracy": accuracy(net.eval(), data[2], data[3]),
            "layers": sum(4 * e.elements for e in jpeg) / sum(e.size for e in jpeg),
            "before": before, "after": after}


def main() -> None:
    data = digits(0)
    for net in ("mlp2", "lenet5"):
        model, acc = train_digits_net(net, epochs=30, cache_dir=cimcodec.home() / "cache")
        state = {k: v.clone() for k, v in model.state_dict().items()}
        info = container.inspect(container.compress(state, codec="raw"))
        names = [e.name for e in container.inspect(container.compress(state)).entries
                 if e.codec == "jpeg"]
        int8 = dict(state)
        for n in names:
            matrix, shape = pipeline.as_matrix(state[n].numpy())
            q, params = quant.quantize(matrix)
            int8[n] = torch.from_numpy(params.dequantize(q).reshape(shape))
        quantized = copy.deepcopy(model)
        quantized.load_state_dict(int8)
        print(f"{net}: fp32 accuracy {acc:.4f}; int8 only: accuracy "
              f"{accuracy(quantized.eval(), data[2], data[3]):.4f}; {info.fp32_bytes} fp32 "
              f"bytes")
        print("| net | clusters | remap | quality | ratio | layers | accuracy | H before | "
              "H after |")
        for k, remap, quality in ROWS:
            e = row(model, state, data, k, remap, quality)
            print(f"| {net} | {k} | {remap} | {quality} | {e['ratio']:.2f}x | "
                  f"{e['layers']:.2f}x | {e['accuracy']:.4f} | "
                  f"{e['before'] / 8192:.1f} | {e['after'] / 8192:.1f} |")


if __name__ == "__main__":
    main()
