"""Simulation benchmarks, one home: a suite is an environment factory, a task table and an expert.

``liv.sim.suite`` registers the suites (``metaworld``, ``kitchen``); ``liv.sim.<suite>/`` holds each
one's task table (``tasks.py``, standard library only) and environment (``env.py``). Generation
(:mod:`liv.sim.generate`), LCBC (:mod:`liv.sim.bc`), planning (:mod:`liv.sim.planning`) and their
commands take a suite. Simulators are optional (``pip install 'liv[sim]'``) and imported on first use.
"""
