"""gunicorn settings for `gunicorn wsgi:app` (see README: Deployment)."""

import multiprocessing
import os

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", max(2, min(4, multiprocessing.cpu_count() * 2))))
worker_class = os.environ.get("WORKER_CLASS", "sync")
threads = int(os.environ.get("THREADS", 1))
timeout = 30
accesslog = os.environ.get("ACCESS_LOG", "-")
errorlog = "-"
# Token values in URLs (?access_token=, accessTokenId) are replaced by [REDACTED].
logger_class = "portal.logging.RedactingLogger"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
