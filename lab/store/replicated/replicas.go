package replicated

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"caplab/lab/inventory"

	clientv3 "go.etcd.io/etcd/client/v3"
)

const replicaPrefix = "/inv/"

// epochPrefix holds every SKU of the current epoch.
func (s *Store) epochPrefix() string {
	return fmt.Sprintf("%s%d/", replicaPrefix, s.epoch.Load())
}

func (s *Store) skuPrefix(sku string) string { return s.epochPrefix() + sku + "/" }

// itemKey sorts in Version.Less order: fixed-width hex wall and logical,
// then the region name. Versions are never negative (a clock reading).
func (s *Store) itemKey(sku string, v inventory.Version) string {
	return fmt.Sprintf("%s%016x-%016x-%s", s.skuPrefix(sku), uint64(v.Wall), uint64(v.Logical), v.Region)
}

type storedItem struct {
	Quantity int               `json:"q"`
	Version  inventory.Version `json:"v"`
}

func decodeItem(raw []byte) (inventory.Item, error) {
	var si storedItem
	if err := json.Unmarshal(raw, &si); err != nil {
		return inventory.Item{}, err
	}
	return inventory.Item(si), nil
}

// writeItem stores item on region to's replica, as a client in region
// from: put its key, delete every older key of the SKU.
func (s *Store) writeItem(ctx context.Context, from, to, sku string, it inventory.Item) error {
	cli, err := s.cluster.ReplicaClient(from, to)
	if err != nil {
		return err
	}
	raw, _ := json.Marshal(storedItem(it))
	k := s.itemKey(sku, it.Version)
	_, err = cli.Txn(ctx).Then(
		clientv3.OpPut(k, string(raw)),
		clientv3.OpDelete(s.skuPrefix(sku), clientv3.WithRange(k)),
	).Commit()
	return err
}

// readItem reads the newest item of a SKU from region to's replica.
func (s *Store) readItem(ctx context.Context, from, to, sku string) (inventory.Item, error) {
	cli, err := s.cluster.ReplicaClient(from, to)
	if err != nil {
		return inventory.Item{}, err
	}
	resp, err := cli.Get(ctx, s.skuPrefix(sku), clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(1))
	if err != nil {
		return inventory.Item{}, err
	}
	if len(resp.Kvs) == 0 {
		return inventory.Item{}, nil
	}
	return decodeItem(resp.Kvs[0].Value)
}

type reply struct {
	region string
	item   inventory.Item
	err    error
}

// readQuorum asks every replica and returns once r have answered (the
// replies so far) or once r can no longer be reached.
func (s *Store) readQuorum(ctx context.Context, from, sku string, r int) ([]reply, bool) {
	ch := make(chan reply, len(s.regions))
	for _, to := range s.regions {
		go func() {
			it, err := s.readItem(ctx, from, to, sku)
			ch <- reply{to, it, err}
		}()
	}
	return gather(ctx, ch, len(s.regions), r)
}

// gather collects the replies of n replicas and returns the successful
// ones once need have come in (true), or once need can no longer be
// reached or ctx ends (false).
func gather(ctx context.Context, ch <-chan reply, n, need int) ([]reply, bool) {
	var ok []reply
	failed := 0
	for range n {
		select {
		case rp := <-ch:
			if rp.err != nil {
				failed++
			} else {
				ok = append(ok, rp)
			}
		case <-ctx.Done():
			return ok, false
		}
		if len(ok) >= need {
			return ok, true
		}
		if failed > n-need {
			return ok, false
		}
	}
	return ok, len(ok) >= need
}

// writeQuorum sends it to every replica and returns the regions that
// acknowledged once w have (true), or when w can no longer be reached or
// ctx ends (false). Writes still on their way carry on in the background
// (bounded by the request deadline): that is the asynchronous replication
// W < N allows.
func (s *Store) writeQuorum(ctx context.Context, from, sku string, it inventory.Item, w int) ([]string, bool) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(5 * time.Second) // callers set one; never write without
	}
	ch := make(chan reply, len(s.regions))
	for _, to := range s.regions {
		s.inflight.Add(1)
		go func() {
			defer s.inflight.Done()
			wctx, cancel := context.WithDeadline(s.ctx, deadline)
			defer cancel()
			ch <- reply{region: to, err: s.writeItem(wctx, from, to, sku, it)}
		}()
	}
	replies, ok := gather(ctx, ch, len(s.regions), w)
	return regionsOf(replies), ok
}
