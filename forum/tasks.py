"""Celery tasks of the forum (queue ``default``): thin, each calls one service. Safe to run twice:
the services claim what they send with conditional updates."""

from __future__ import annotations

from smtplib import SMTPException

from celery import Task, shared_task

from forum.notifications import digests_send, notification_email_send
from forum.services import error_occurrences_index

EMAIL_RETRIES = 5


@shared_task(bind=True, acks_late=True, max_retries=EMAIL_RETRIES, queue="default")
def notification_email_send_task(self: Task, notification_id: int) -> bool:
    try:
        return notification_email_send(notification_id=notification_id)
    except (SMTPException, OSError) as error:  # the mail server, not us: try again later
        raise self.retry(exc=error, countdown=60 * 2**self.request.retries) from error


@shared_task(queue="default")
def digests_send_task() -> int:
    return digests_send()


@shared_task(queue="default")
def error_occurrences_index_task() -> int:
    return error_occurrences_index()
