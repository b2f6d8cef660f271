"""Continuity worker: the WhatsApp Web session, token store, outbox and jobs."""
