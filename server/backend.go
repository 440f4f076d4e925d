package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/porthole-chat/porthole/server/bus"
	"github.com/porthole-chat/porthole/server/bus/redisbus"
	"github.com/porthole-chat/porthole/server/store"
)

// OpenBackend opens the store the configuration names, and the bus that
// goes with it: the bolt file (store.path, or porthole.db in dataDir) or
// memory with the in-process bus, for one process; Redis with a Redis
// bus over the same client, for any number of processes. The server
// closes both (Options.Store, Options.Bus).
func OpenBackend(cfg StoreConfig, dataDir string, log *slog.Logger) (store.Store, bus.Bus, error) {
	switch cfg.Driver {
	case "memory":
		return store.NewMemory(), bus.NewLocal(), nil
	case "redis":
		client, err := redisClient(cfg.URL.Reveal())
		if err != nil {
			return nil, nil, fmt.Errorf("store.url: %w", err)
		}
		st, err := store.OpenRedis(client, store.RedisOptions{CloseClient: true, Replicas: cfg.Replicas, ReplicaTimeout: time.Duration(cfg.ReplicaTimeout)})
		if err != nil {
			client.Close()
			return nil, nil, fmt.Errorf("store: %w (is Redis running at store.url, and reachable from here?)", err)
		}
		b, err := redisbus.New(client, redisbus.Options{Logger: log})
		if err != nil {
			st.Close()
			return nil, nil, fmt.Errorf("bus: %w", err)
		}
		return st, b, nil
	}
	path := cfg.Path
	if path == "" {
		path = filepath.Join(dataDir, "porthole.db")
	}
	st, err := store.OpenBolt(path, store.BoltOptions{})
	if err != nil {
		return nil, nil, dataDirError(filepath.Dir(path), err)
	}
	return st, bus.NewLocal(), nil
}

// redisClient makes the go-redis client store.url names (redisURL).
func redisClient(raw string) (redis.UniversalClient, error) {
	open, err := redisURL(raw)
	if err != nil {
		return nil, err
	}
	return open(), nil
}

// redisURL reads store.url: redis://[user:password@]host:port/db or
// rediss:// for one server (or a primary behind a proxy); the same with
// ?addr=host:port for every other node, for a Redis Cluster; with
// ?master_name=NAME, the Sentinel nodes of a failover group. It returns
// how to make the client, so that checking a configuration makes none.
func redisURL(raw string) (func() redis.UniversalClient, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return nil, errors.New("must be a redis:// or rediss:// URL, e.g. redis://localhost:6379/0")
	}
	q := u.Query()
	switch {
	case q.Has("master_name"):
		o, err := redis.ParseFailoverURL(raw)
		if err != nil {
			return nil, err
		}
		return func() redis.UniversalClient { return redis.NewFailoverClient(o) }, nil
	case q.Has("addr"):
		o, err := redis.ParseClusterURL(raw)
		if err != nil {
			return nil, err
		}
		return func() redis.UniversalClient { return redis.NewClusterClient(o) }, nil
	}
	o, err := redis.ParseURL(raw)
	if err != nil {
		return nil, err
	}
	return func() redis.UniversalClient { return redis.NewClient(o) }, nil
}
