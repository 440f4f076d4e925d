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

// Backend is what the processes serving the same visitors share: the
// store, the bus between them, and the limits' counts.
type Backend struct {
	Store store.Store
	Bus   bus.Bus
	// Limits counts messages, conversation starts and sockets per
	// visitor, address and bot (see Limiter).
	Limits Limiter
}

// Close closes the limiter, the bus and the store, in that order: on
// Redis the first two share the store's client.
func (b *Backend) Close() error {
	return errors.Join(b.Limits.Close(), b.Bus.Close(), b.Store.Close())
}

// OpenBackend opens the store the configuration names, and the bus and
// the limiter that go with it: the bolt file (store.path, or porthole.db
// in dataDir) or memory with the in-process bus and limits counted in
// memory, for one process; Redis with a Redis bus and limits counted in
// Redis, over the same client, for any number of processes. The server
// closes all three (Options.Store, Options.Bus, Options.Limits).
func OpenBackend(cfg *Config, dataDir string, log *slog.Logger) (*Backend, error) {
	switch cfg.Store.Driver {
	case "memory":
		return &Backend{store.NewMemory(), bus.NewLocal(), NewMemoryLimiter(cfg.Limits)}, nil
	case "redis":
		client, err := redisClient(cfg.Store.URL.Reveal())
		if err != nil {
			return nil, fmt.Errorf("store.url: %w", err)
		}
		st, err := store.OpenRedis(client, store.RedisOptions{CloseClient: true, Replicas: cfg.Store.Replicas, ReplicaTimeout: time.Duration(cfg.Store.ReplicaTimeout)})
		if err != nil {
			client.Close()
			return nil, fmt.Errorf("store: %w (is Redis running at store.url, and reachable from here?)", err)
		}
		b, err := redisbus.New(client, redisbus.Options{Logger: log})
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("bus: %w", err)
		}
		return &Backend{st, b, NewRedisLimiter(client, cfg.Limits, RedisLimiterOptions{Logger: log})}, nil
	}
	path := cfg.Store.Path
	if path == "" {
		path = filepath.Join(dataDir, "porthole.db")
	}
	st, err := store.OpenBolt(path, store.BoltOptions{})
	if err != nil {
		return nil, dataDirError(filepath.Dir(path), err)
	}
	return &Backend{st, bus.NewLocal(), NewMemoryLimiter(cfg.Limits)}, nil
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
