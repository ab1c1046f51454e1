package rpc

// Abandon stops renewing without releasing anything, as a killed node does.
func (l *RedisLease) Abandon() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
		<-l.done
	}
}
