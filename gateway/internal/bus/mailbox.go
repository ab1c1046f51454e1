package bus

import "sync"

// mailbox is the queue between a subscription's source (the in-memory publisher, or the Redis
// receive loop) and its handler: pushes never block, the queue is bounded by maxPending (overflow
// is dropped and reported to onDrop), and run calls the handler in push order on one goroutine.
type mailbox struct {
	h          Handler
	maxPending int
	onDrop     func(pattern, channel string)

	mu      sync.Mutex
	queue   []Message
	stopped bool
	wake    chan struct{}
	done    chan struct{}
	once    sync.Once
}

func newMailbox(h Handler, maxPending int, onDrop func(pattern, channel string)) mailbox {
	return mailbox{h: h, maxPending: maxPending, onDrop: onDrop, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// push queues a message for the handler, or drops it when the queue is full or stopped.
func (s *mailbox) push(pattern, channel string, payload []byte, position string) {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	if len(s.queue) >= s.maxPending {
		s.mu.Unlock()
		if s.onDrop != nil {
			s.onDrop(pattern, channel)
		}
		return
	}
	s.queue = append(s.queue, Message{Pattern: pattern, Channel: channel, Payload: payload, Position: position})
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run calls the handler for every queued message until stop; it calls wg.Done when it returns.
func (s *mailbox) run(wg *sync.WaitGroup) {
	defer wg.Done()
	var batch []Message
	for {
		select {
		case <-s.done:
			return
		case <-s.wake:
		}
		for {
			s.mu.Lock()
			if s.stopped {
				s.mu.Unlock()
				return
			}
			batch, s.queue = s.queue, batch[:0]
			s.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			for i := range batch {
				if s.isStopped() {
					return
				}
				s.h(batch[i])
				batch[i] = Message{}
			}
		}
	}
}

func (s *mailbox) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// stop drops the queue and ends run; it reports whether this call stopped the mailbox.
func (s *mailbox) stop() bool {
	first := false
	s.once.Do(func() {
		first = true
		s.mu.Lock()
		s.stopped = true
		s.queue = nil
		s.mu.Unlock()
		close(s.done)
	})
	return first
}
