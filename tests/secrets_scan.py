#!/usr/bin/env python3
"""Fails if a tracked file holds an AWS secret or a real account id.

Looks for access key ids (AKIA…/ASIA…), secret access keys assigned in config or code, private keys,
and 12-digit account ids inside ARNs or next to the word "account" — except AWS's documentation
examples (111122223333, 123456789012), which tests use on purpose. Run with --self-test to prove that
each pattern catches a planted secret.
"""

import re
import subprocess
import sys

EXAMPLE_ACCOUNTS = {"111122223333", "123456789012", "000000000000"}

PATTERNS = [
    ("AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("AWS secret access key", re.compile(r"(?i)aws_?secret_?access_?key\s*[:=]\s*['\"]?[A-Za-z0-9/+]{40}\b")),
    ("private key", re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----")),
    ("account id in an ARN", re.compile(r"arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:(\d{12}):")),
    ("account id", re.compile(r"(?i)account[_ -]?id[\"']?\s*[:=]\s*[\"']?(\d{12})\b")),
]


def findings(text):
    found = []
    for name, pattern in PATTERNS:
        for match in pattern.finditer(text):
            account = match.group(1) if pattern.groups else None
            if account in EXAMPLE_ACCOUNTS:
                continue
            found.append((name, match.group(0)))
    return found


def self_test():
    planted = [
        "key = AKIA" + "ABCDEFGHIJKLMNOP",
        "aws_secret_access_key = " + "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY",
        "-----BEGIN RSA " + "PRIVATE KEY-----",
        "arn:aws:sqs:us-east-1:" + "493817260514" + ":queue",
        'accountId: "' + "493817260514" + '"',
    ]
    for text in planted:
        if not findings(text):
            sys.exit(f"self-test: missed {text!r}")
    clean = "arn:aws:sqs:us-east-1:111122223333:my-queue and !Sub arn:${AWS::Partition}:sqs:${AWS::AccountId}"
    if findings(clean):
        sys.exit(f"self-test: false positive on {clean!r}: {findings(clean)}")
    return len(planted)


def main():
    caught = self_test()
    if "--self-test" in sys.argv:
        print(f"secrets scan: {caught} planted secrets caught")
        return
    files = subprocess.run(["git", "ls-files", "-z"], capture_output=True, check=True).stdout.split(b"\0")
    problems = []
    for path in filter(None, files):
        name = path.decode()
        if name == "tests/secrets_scan.py":
            continue
        try:
            with open(name, encoding="utf-8") as handle:
                text = handle.read()
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
        problems.extend(f"{name}: {kind}: {value}" for kind, value in findings(text))
    if problems:
        print("secrets scan: found what must not be committed:", *problems, sep="\n  ")
        sys.exit(1)
    print(f"secrets scan: {len(files) - 1} tracked files clean ({caught} planted secrets caught by the self-test)")


if __name__ == "__main__":
    main()
