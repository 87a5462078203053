"""Signed webhooks: events stored before delivery (an outbox), HMAC-SHA256 signatures,
delivery with retries and exponential backoff, a delivery log, SSRF-safe subscriber URLs."""
