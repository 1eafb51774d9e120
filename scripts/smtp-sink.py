#!/usr/bin/python3
"""SMTP sink on loopback (Debian's python3-aiosmtpd), for tests and the local demo.

Every accepted message is written to DIR as N.eml (the bytes as received) and N.json: the envelope
(mail_from, rcpt_tos, auth_user) and what Python's email parser reads from the message (decoded
subject, from, to, text and html parts, List-Unsubscribe headers, parser defects), an independent
check of the MIME a sender builds. Recipients whose local part starts with "reject" get 550 (permanent),
"tempfail" get 451 (transient), so senders' error handling can be exercised.

usage: smtp-sink.py --port P --dir DIR [--user U --password PW]
"""
import argparse
import email
import email.policy
import json
import os
import signal
import threading
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("reject"):
            return "550 5.1.1 mailbox unavailable"
        if local.startswith("tempfail"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            n = self.count
        base = os.path.join(self.directory, str(n))
        meta = {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                "auth_user": session.auth_data.login.decode() if session.auth_data else None}
        meta.update(parse(envelope.original_content))
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content)
        with open(base + ".json", "w") as f:
            json.dump(meta, f)
        os.rename(base + ".eml.tmp", base + ".eml")  # .eml appears last: a reader sees whole messages
        return "250 2.0.0 queued as sink-%d" % n


def parse(raw):
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    out = {"subject": str(msg["Subject"]), "from": str(msg["From"]), "to": str(msg["To"]),
           "message_id": str(msg["Message-ID"]), "date": str(msg["Date"]),
           "content_type": msg.get_content_type(),
           "list_unsubscribe": msg["List-Unsubscribe"], "list_unsubscribe_post": msg["List-Unsubscribe-Post"],
           "defects": [type(d).__name__ for d in msg.defects]}
    for part in msg.walk():
        if part.is_multipart():
            continue
        out["defects"] += [type(d).__name__ for d in part.defects]
        kind = part.get_content_type()
        if kind in ("text/plain", "text/html"):
            out[kind.split("/")[1]] = part.get_content()
    return out


def main():
    warnings.filterwarnings("ignore")  # AUTH without TLS is expected on loopback
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)

    kwargs = {}
    if args.user:
        def authenticate(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == args.user \
                and auth_data.password.decode() == args.password
            return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)
        kwargs = {"authenticator": authenticate, "auth_required": True, "auth_require_tls": False}

    controller = Controller(Sink(args.dir), hostname="127.0.0.1", port=args.port,
                            server_kwargs=kwargs, decode_data=False)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
