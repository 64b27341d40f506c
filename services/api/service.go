package api

import (
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nuid"
)

// service is one NATS micro service: its endpoints' subscriptions, their
// statistics, and the micro protocol's discovery subjects ($SRV.PING,
// $SRV.INFO and $SRV.STATS, by themselves, with the service's name and
// with its id), so `nats micro ls` and `nats micro stats` find it. Unlike
// nats.go's micro package, a request is answered by its own goroutine
// after the subscription's callback returned, and its statistics are
// counted once it is answered, errors included.
type service struct {
	name, id, version, description string
	started                        time.Time

	mu   sync.Mutex
	eps  []*micro.EndpointStats // guarded by mu
	subs []*nats.Subscription
}

func newService(name, version, description string) *service {
	return &service{name: name, id: nuid.Next(), version: version, description: description, started: time.Now().UTC()}
}

// add subscribes an endpoint in the queue group "q"; handler gets the
// index of the endpoint's statistics.
func (s *service) add(nc *nats.Conn, name, subject string, handler func(i int) nats.MsgHandler) error {
	s.mu.Lock()
	i := len(s.eps)
	s.eps = append(s.eps, &micro.EndpointStats{Name: name, Subject: subject, QueueGroup: micro.DefaultQueueGroup})
	s.mu.Unlock()
	sub, err := nc.QueueSubscribe(subject, micro.DefaultQueueGroup, handler(i))
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.subs = append(s.subs, sub)
	s.mu.Unlock()
	return nil
}

// observe counts one answered request of endpoint i.
func (s *service) observe(i int, d time.Duration, errText string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.eps[i]
	st.NumRequests++
	st.ProcessingTime += d
	st.AverageProcessingTime = st.ProcessingTime / time.Duration(st.NumRequests)
	if errText != "" {
		st.NumErrors++
		st.LastError = errText
	}
}

func (s *service) identity() micro.ServiceIdentity {
	return micro.ServiceIdentity{Name: s.name, ID: s.id, Version: s.version, Metadata: map[string]string{}}
}

// discovery answers the micro protocol's PING, INFO and STATS requests
// for this service; reply is checked by the caller.
func (s *service) discovery(verb string) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch verb {
	case "PING":
		return micro.Ping{ServiceIdentity: s.identity(), Type: micro.PingResponseType}
	case "INFO":
		info := micro.Info{ServiceIdentity: s.identity(), Type: micro.InfoResponseType, Description: s.description, Endpoints: []micro.EndpointInfo{}}
		for _, e := range s.eps {
			info.Endpoints = append(info.Endpoints, micro.EndpointInfo{Name: e.Name, Subject: e.Subject, QueueGroup: e.QueueGroup, Metadata: map[string]string{}})
		}
		return info
	default:
		st := micro.Stats{ServiceIdentity: s.identity(), Type: micro.StatsResponseType, Started: s.started, Endpoints: []*micro.EndpointStats{}}
		for _, e := range s.eps {
			cp := *e
			st.Endpoints = append(st.Endpoints, &cp)
		}
		return st
	}
}

// discoverySubjects are the subjects a service answers discovery on.
func (s *service) discoverySubjects() map[string]string {
	out := map[string]string{}
	for _, verb := range []string{"PING", "INFO", "STATS"} {
		for _, subj := range []string{micro.APIPrefix + "." + verb, micro.APIPrefix + "." + verb + "." + s.name, micro.APIPrefix + "." + verb + "." + s.name + "." + s.id} {
			out[subj] = verb
		}
	}
	return out
}

// stop unsubscribes every endpoint; requests already taken are answered
// by their goroutines, which the server waits for.
func (s *service) stop() {
	s.mu.Lock()
	subs := s.subs
	s.subs = nil
	s.mu.Unlock()
	for _, sub := range subs {
		_ = sub.Unsubscribe()
	}
}

// errorReply is the reply of a failed request in the micro protocol's
// form: the error's kind and message in headers, details as JSON.
func errorReply(kind, message string, body []byte) *nats.Msg {
	m := nats.NewMsg("")
	m.Header.Set(micro.ErrorCodeHeader, kind)
	m.Header.Set(micro.ErrorHeader, strings.ReplaceAll(message, "\n", " "))
	m.Data = body
	return m
}

func jsonReply(v any) (*nats.Msg, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg("")
	m.Data = b
	return m, nil
}
