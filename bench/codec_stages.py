"""Rate and accuracy of digits-trained MLP2 and LeNet-5 with each codec stage on or off
(the table in ``docs/codec.md``).

Run: ``.venv/bin/python -m bench.codec_stages`` (about 15 s; networks cached in
``cimcodec.home()/cache``).
"""

import copy

import torch

import cimcodec
from cimcodec.golden.codec import pipeline as codec
from cimcodec.golden.codec import quant
from cimcodec.golden.ml.models import accuracy, digits, train_digits_net
from cimcodec.golden.ml.sweep import evaluate

ROWS = [(0, "none", 90), (16, "none", 90), (16, "none", 75), (16, "full", 75),
        (16, "split", 75), (16, "progressive", 75), (16, "auto", 75), (16, "none", 50),
        (8, "none", 50), (16, "none", 25)]


def main() -> None:
    data = digits(0)
    for net in ("mlp2", "lenet5"):
        model, acc = train_digits_net(net, epochs=30, cache_dir=cimcodec.home() / "cache")
        state = {k: v.clone() for k, v in model.state_dict().items()}
        conv = net == "lenet5"
        names = codec.select_layers(state, conv=conv)
        int8 = dict(state)
        stored = 0
        for n in names:
            matrix, shape = codec.as_matrix(state[n].numpy())
            q, params = quant.quantize(matrix)
            int8[n] = torch.from_numpy(params.dequantize(q).reshape(shape))
            stored += q.size + 4
        quantized = copy.deepcopy(model)
        quantized.load_state_dict(int8)
        total = sum(4 * v.numel() for v in state.values())
        other = sum(4 * v.numel() for k, v in state.items() if k not in names)
        print(f"{net}: fp32 accuracy {acc:.4f}; int8 only {total / (stored + other):.2f}x, "
              f"accuracy {accuracy(quantized.eval(), data[2], data[3]):.4f}")
        print("| net | clusters | remap | quality | ratio | layers | accuracy | H before | "
              "H after |")
        for k, remap, quality in ROWS:
            e = evaluate(model, state, data, codec.Settings(quality=quality, clusters=k,
                                                            remap=remap, budget=8), conv=conv)
            print(f"| {net} | {k} | {remap} | {quality} | {e['ratio']:.2f}x | "
                  f"{e['layers_ratio']:.2f}x | {e['accuracy']:.4f} | "
                  f"{e['entropy_before'] / 8192:.1f} | {e['entropy_after'] / 8192:.1f} |")


if __name__ == "__main__":
    main()
