"""The figures of the README's "Model performance" table: estimation error on the seeded tasks of tests/performance_scenario.py.

    .venv/bin/python benchmarks/performance_accuracy.py
"""

import sys, numpy as np
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from tests.performance_scenario import classification, regression, FEATURES
from monitor.performance import PerformanceEstimator, PerformanceSpec
for classes in (2,3):
    e=[]; rel=[]
    for seed in range(20):
        t=classification(seed, classes); est=PerformanceEstimator.fit(t.reference, PerformanceSpec(target="y", probabilities=t.probabilities, features=FEATURES, prediction="prediction"))
        for w,y in zip(t.windows,t.labels):
            x=est.estimate_window(w); e.append(abs(x.get("accuracy").value-est.realized(w,y)["accuracy"])); rel.append(x.reliable)
    e=np.array(e); print(f"cov {classes}: within .03 {np.mean(e<0.03):.3f} mean {e.mean():.4f} max {e.max():.4f} reliable {np.mean(rel):.3f} n {len(e)}")
for kind in ("flip","swap"):
  for classes in (2,3):
    off=0; flagged_off=0; flagged=0; n=0
    for seed in range(20):
        t=classification(seed, classes, max_shift=0.0, swap=True) if kind=="swap" else classification(seed, classes, max_shift=0.0, flipped_share=(0,.01,.02,.03,.04,.06,.08,.1,.15,.3))
        est=PerformanceEstimator.fit(t.reference, PerformanceSpec(target="y", probabilities=t.probabilities, features=FEATURES, prediction="prediction"))
        for w,y in zip(t.windows,t.labels):
            x=est.estimate_window(w); err=abs(x.get("accuracy").value-est.realized(w,y)["accuracy"]); n+=1
            if err>0.05: off+=1; flagged_off += not x.reliable
            flagged += not x.reliable
    print(f"{kind} {classes}: windows {n} off>0.05 {off} of which unreliable {flagged_off}; unreliable total {flagged}")
r=[]
for seed in range(20):
    t=regression(seed); est=PerformanceEstimator.fit(t.reference, PerformanceSpec(target="y", task="regression", features=FEATURES, prediction="prediction"))
    for w,y in zip(t.windows,t.labels):
        x=est.estimate_window(w); r.append(abs(x.get("mae").value/est.realized(w,y)["mae"]-1))
r=np.array(r); print(f"reg: within 10% {np.mean(r<0.1):.3f} mean {r.mean():.4f} max {r.max():.4f} n {len(r)}")
