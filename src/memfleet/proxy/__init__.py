"""The running proxy: app lifecycle (build, reload, watch), client connections, the policy
gate, per-client limits and worker processes."""
