"""Notifications on AWS: the core's ``Notifier`` port over an SNS client created once by the caller."""

from __future__ import annotations

from typing import Any

SNS_SUBJECT_MAX = 100


class SnsNotifier:
    def __init__(self, client: Any, topic_arn: str) -> None:
        self._sns = client
        self._topic = topic_arn

    def publish(self, subject: str, message: str) -> None:
        # SNS subjects: ASCII, no line breaks, at most 100 characters.
        clean = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in subject)[:SNS_SUBJECT_MAX]
        self._sns.publish(TopicArn=self._topic, Subject=clean or "nyanops", Message=message)
