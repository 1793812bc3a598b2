"""`liv reproduce`: the paper's tables measured on liv's own machinery, with 95% intervals.

config (options and scales), protocol (stages and cells), units (work run in worker processes), cells
(the cache), stats (intervals and orderings), curves (Figure 6), paper (the paper's numbers), report.
"""
