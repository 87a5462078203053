"""Customer-success workflows on top of the scores: lever what-ifs, why a score moved,
machine-vs-CSM disagreements, stale inputs, save rate against expectation, the renewal
forecast and signed webhooks. No FastAPI in the cores; routers live in ``service/api``."""
