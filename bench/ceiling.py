"""The ceiling: a bare Flask JSON route, served by the same gunicorn configuration as Tessera.

Every Tessera figure is printed as a ratio to this one (same machine, same run).
"""

from flask import Flask

app = Flask(__name__)


@app.get("/ping")
def ping():
    return {"status": "ok"}
