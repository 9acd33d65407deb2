#!/usr/bin/env python3
"""torch.amp.GradScaler on the CPU, driven by a given gradient sequence: the reference for
loraqa's train.GradScaler (train/scaler_test.go).

stdin: {"grads": [[float32 x4] per step], "inject": {"step": "inf"|"nan"},
        "init_scale", "growth_factor", "backoff_factor", "growth_interval"}
Each step: grad = scaler.scale(g) (g with element 1 replaced by inf/nan where injected),
unscale_, step (SGD, skipped by the scaler on inf/NaN), update.
stdout: {"scale": [after each update], "tracker": [...], "skipped": [...],
         "unscaled": [[the unscaled gradient] per step], "torch": version}
"""
import json
import math
import sys

import torch


def main():
    req = json.load(sys.stdin)
    inject = {int(k): v for k, v in req.get("inject", {}).items()}
    p = torch.nn.Parameter(torch.zeros(4))
    opt = torch.optim.SGD([p], lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=req["init_scale"], growth_factor=req["growth_factor"],
                                  backoff_factor=req["backoff_factor"], growth_interval=req["growth_interval"])
    out = {"scale": [], "tracker": [], "skipped": [], "unscaled": [], "torch": torch.__version__}
    for i, g in enumerate(req["grads"]):
        g = torch.tensor(g, dtype=torch.float32)
        if i in inject:
            g[1] = math.inf if inject[i] == "inf" else math.nan
        p.grad = scaler.scale(g)
        before = p.detach().clone()
        scaler.unscale_(opt)
        out["unscaled"].append([x if math.isfinite(x) else str(x) for x in p.grad.tolist()])
        scaler.step(opt)
        scaler.update()
        out["skipped"].append(bool(torch.equal(before, p.detach())))
        out["scale"].append(scaler.get_scale())
        out["tracker"].append(int(scaler._growth_tracker.item()))
        opt.zero_grad(set_to_none=True)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
