"""Structural check of a compose file, since no container engine runs here: it must parse as
YAML, every service must have an image or a build, every named volume and secret a service
uses must be declared, ports must be "host:container[/proto]", commands lists of strings,
and the build context must exist. Prints each service's command, so a caller can check it."""
import os
import re
import sys

import yaml

path = sys.argv[1]
doc = yaml.safe_load(open(path))
errors = []
services = doc.get("services") or {}
if not services:
    errors.append("no services")
declared = set((doc.get("volumes") or {}).keys())
secrets = set((doc.get("secrets") or {}).keys())
for name, svc in services.items():
    if "image" not in svc and "build" not in svc:
        errors.append(f"{name}: neither image nor build")
    build = svc.get("build")
    if isinstance(build, dict):
        ctx = os.path.normpath(os.path.join(os.path.dirname(path), build.get("context", ".")))
        if not os.path.isdir(ctx):
            errors.append(f"{name}: build context {ctx} missing")
        dockerfile = os.path.join(ctx, build.get("dockerfile", "Dockerfile"))
        if not os.path.isfile(dockerfile):
            errors.append(f"{name}: {dockerfile} missing")
    for port in svc.get("ports", []):
        if not re.fullmatch(r"\d+:\d+(/(tcp|udp))?", str(port)):
            errors.append(f"{name}: port {port!r}")
    for vol in svc.get("volumes", []):
        source = str(vol).split(":")[0]
        if not source.startswith((".", "/")) and source not in declared:
            errors.append(f"{name}: volume {source} not declared")
    for secret in svc.get("secrets", []) or []:
        name_of = secret.get("source") if isinstance(secret, dict) else secret
        if name_of not in secrets:
            errors.append(f"{name}: secret {name_of} not declared")
    command = svc.get("command")
    if command is not None and not (isinstance(command, list) and all(isinstance(c, str) for c in command)):
        errors.append(f"{name}: command must be a list of strings")
    for dep in svc.get("depends_on", []) or []:
        if dep not in services:
            errors.append(f"{name}: depends on unknown {dep}")
if errors:
    sys.exit("\n".join(f"{path}: {e}" for e in errors))
print(f"{path}: ok ({len(services)} services)")
for name, svc in services.items():
    if svc.get("command"):
        print(f"command {name}\t" + "\t".join(svc["command"]))
