"""The paper's numbers that `liv reproduce` sets beside its own (seed 002: Ma et al., ICML 2023).

Success rates in percent, "mean ± std" over 3 seeds where the paper gives a std. Keys follow liv's
labels: an init label (Random, CLIP, LIV-EPIC) and an objective (pretrained, liv, clip, vip-i). The
paper's Meta-World numbers come from its own data (random-policy episodes with concatenated
instructions, 6 atomic tasks) and, for planning, from CEM on a learned SV2P video model; liv's runs use
expert episodes and the true simulator, so the comparison is of orderings, not of values.
"""

from __future__ import annotations

TABLE1 = {
    "metaworld": {
        "Random": {"pretrained": "20.6 ± 1.0", "liv": "27.8 ± 4.1", "clip": "30.8 ± 2.2", "vip-i": "30.6 ± 3.5"},
        "CLIP": {"pretrained": "19.4 ± 1.3", "liv": "33.9 ± 7.5", "clip": "16.4 ± 4.3", "vip-i": "30.0 ± 2.2"},
        "LIV-EPIC": {"pretrained": "30.6 ± 5.0", "liv": "35.8 ± 1.4", "clip": "21.4 ± 5.7", "vip-i": "20.3 ± 3.4"},
    },
    "kitchen": {
        "Random": {"pretrained": "17.7 ± 3.9", "liv": "19.2 ± 3.8", "clip": "17.1 ± 2.2", "vip-i": "3.2 ± 0.7"},
        "CLIP": {"pretrained": "22 ± 3.5", "liv": "26.8 ± 4.9", "clip": "14.0 ± 6.8", "vip-i": "14.8 ± 1.3"},
        "LIV-EPIC": {"pretrained": "29.3 ± 4.6", "liv": "32.3 ± 5.8", "clip": "15.1 ± 4.3", "vip-i": "17.3 ± 6.6"},
    },
}
"""Table 1: LCBC success with text conditioning, by init (rows) and fine-tuning objective (columns)."""

TABLE6 = {
    "metaworld": {"LIV-EPIC": ("30.6 ± 5.0", "26.1 ± 5.5"), "CLIP": ("19.4 ± 1.3", "28.6 ± 1.3")},
    "kitchen": {"LIV-EPIC": ("29.3 ± 4.6", "17.6 ± 5.0"), "CLIP": ("22 ± 3.5", "14.8 ± 0.7")},
}
"""Table 6: LCBC success of pre-trained models, (text, one-hot) task input."""

PLANNING = {
    "metaworld": {("LIV-EPIC", "pretrained"): ("29.7 ± 4.7", "34"), ("LIV-EPIC", "liv"): ("55.2 ± 5.5", "57.8"),
                  ("CLIP", "pretrained"): ("18.2 ± 4.4", "14.7"), ("CLIP", "liv"): ("45.3 ± 2.5", "44.4"),
                  ("CLIP", "clip"): ("30.7 ± 3.3", "34.4")},
    "kitchen": {("LIV-EPIC", "pretrained"): ("1.3 ± 0.8", None), ("LIV-EPIC", "liv"): ("20.0 ± 4.5", None),
                ("CLIP", "pretrained"): ("0 ± 0.0", None), ("CLIP", "liv"): ("15.2 ± 4.6", None),
                ("CLIP", "clip"): ("3.2 ± 0.9", None)},
}
"""Tables 2 and 8: planning success by (init, objective) reward: (1 CEM iteration or MPPI, 3 CEM iterations)."""

TABLE9 = {("LIV-EPIC", "pretrained"): ("1.3", "1.0"), ("LIV-EPIC", "liv"): ("20.0", "0.0")}
"""Table 9 (FrankaKitchen): planning success with the correct and with a random language goal."""

CLAIMS = [
    ("lcbc", "LIV fine-tuning beats CLIP (InfoNCE-only) fine-tuning for LCBC", ("liv", "clip")),
    ("lcbc", "LIV fine-tuning beats VIP-I fine-tuning for LCBC", ("liv", "vip-i")),
    ("lcbc", "LIV fine-tuning beats the un-fine-tuned init for LCBC", ("liv", "pretrained")),
    ("text", "LIV's text embedding does at least as well as a one-hot task id (LIV-fine-tuned)", ("liv",)),
    ("plan", "the LIV-fine-tuned reward plans better than the CLIP-fine-tuned one", ("liv", "clip")),
    ("plan3", "the LIV-fine-tuned reward improves with 3 CEM iterations over 1", ("liv",)),
    ("random", "with a random language goal the LIV-fine-tuned reward's success collapses", ("liv",)),
]
"""The paper's orderings that the report checks (Tables 1, 2, 6, 8, 9), as (kind, statement, objectives)."""
