# Skirmish: each recipe is one line and calls cargo xtask or cargo.

# Build and serve the game at http://127.0.0.1:8080
serve *ARGS:
    cargo xtask serve -- {{ARGS}}

# The same over HTTPS and WSS, with a local CA's certificate for localhost (made in target/dev-tls)
serve-tls *ARGS:
    cargo xtask serve --tls -- {{ARGS}}

# Build the browser bundle into target/web and print its gzipped size
build:
    cargo xtask build

# Every check CI runs: fmt, clippy, wasm32 builds, all tests, browser tests in Chromium
test:
    cargo xtask test

# N headless bots against a fresh release server (default 16 bots, 30 s)
bots N="16" *ARGS:
    cargo xtask bots {{N}} {{ARGS}}

# The bandwidth benchmark: 16 bots for 60 s, then an idle room; deltas vs full snapshots
bench-net *ARGS:
    cargo xtask bench-net {{ARGS}}

# The capacity run: playing bots in steps until the bar fails, then memory per idle connection
load *ARGS:
    cargo xtask load {{ARGS}}

# Memory per idle connection over wss:// against ws://, in one run
tls-memory *ARGS:
    cargo xtask tls-memory {{ARGS}}

# Soak a release server with bots, churn, faults and a latency proxy (default: 200 bots, 60 s)
soak *ARGS:
    cargo xtask soak -- {{ARGS}}
