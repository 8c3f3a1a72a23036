"""`tt serve`: the town over HTTP (FastAPI on uvicorn), a client of the town like `tt`."""
