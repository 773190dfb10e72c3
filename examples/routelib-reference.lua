-- The reference design's replicated x sharded config for memcached's proxy (routelib):
-- two replica pools of three nodes, each pool with its own hash seed. Reads from the fastest
-- replica, every other command to all replicas.
--   memfleet config --from-routelib examples/routelib-reference.lua
--   memfleet proxy --config examples/routelib-reference.lua
pools{
    set_all = {
        replica_0 = {
            options = { seed = "replica_0" },
            backends = { "127.0.0.1:21211", "127.0.0.1:21212", "127.0.0.1:21213" },
        },
        replica_1 = {
            options = { seed = "replica_1" },
            backends = { "127.0.0.1:21221", "127.0.0.1:21222", "127.0.0.1:21223" },
        },
    },
}

routes{
    cmap = {
        get = route_allfastest{ children = "set_all", miss = false },
    },
    default = route_allsync{ children = "set_all" },
}
