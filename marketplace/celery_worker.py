"""Entry point for Celery processes: `celery -A marketplace.celery_worker worker` (and `beat`)."""

from marketplace import create_app
from marketplace.tasks import celery_app

app = create_app()
celery = celery_app
