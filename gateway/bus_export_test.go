package gateway

import (
	"context"

	"github.com/teragate/teragate/gateway/internal/bus"
)

// SubscribeTest subscribes channel on the gateway's bus for a test and returns the unsubscribe
// function.
func (g *Gateway) SubscribeTest(ctx context.Context, channel string, h func(payload []byte)) (func(), error) {
	sub, err := g.bus.Subscribe(ctx, channel, func(m bus.Message) { h(m.Payload) })
	if err != nil {
		return nil, err
	}
	return func() { _ = sub.Unsubscribe(context.Background()) }, nil
}
