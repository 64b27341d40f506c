// Package metrics exposes flmngr's figures in the Prometheus text format:
// tasks by state and clients online (read from the views at scrape time),
// events appended per type, command latencies, server spawns and exits,
// HTTP latencies, open streams and the consumers they share. Every method
// is safe on a nil *Metrics, so components work without it.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/projections"
)

// Views is what the state gauges read.
type Views interface {
	Tasks(projections.TaskFilter) ([]projections.TaskView, error)
	Clients() ([]projections.ClientView, error)
	DeadLetters() (int, *projections.DeadLetter, error)
}

// Metrics holds the collectors.
type Metrics struct {
	reg      *prometheus.Registry
	appended *prometheus.CounterVec
	commands *prometheus.HistogramVec
	spawns   prometheus.Counter
	exits    *prometheus.CounterVec
	http     *prometheus.HistogramVec
	streams  prometheus.Gauge
	// followers are the consumers the streams share, one per filter.
	followers prometheus.Gauge
	limited   prometheus.Counter
	refused   prometheus.Counter
	diskFree  prometheus.Gauge
	diskLow   prometheus.Gauge
	// legacyOpen is 1 while the original's endpoints are open without
	// the token to some networks; legacyCalls counts the calls let in so.
	legacyOpen  prometheus.Gauge
	legacyCalls *prometheus.CounterVec
}

// New registers the collectors; views may be nil.
func New(views Views) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		appended: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flmngr_events_appended_total",
			Help: "Events appended to the log, by type."}, []string{"type"}),
		commands: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "flmngr_command_duration_seconds",
			Help: "Time to handle a command or query on the NATS endpoints.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)},
			[]string{"endpoint", "outcome"}),
		spawns: prometheus.NewCounter(prometheus.CounterOpts{Name: "flmngr_supervisor_spawns_total",
			Help: "Server processes the cloud's supervisor started."}),
		exits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flmngr_supervisor_exits_total",
			Help: "Server processes that ended, by outcome."}, []string{"outcome"}),
		http: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "flmngr_http_request_duration_seconds",
			Help: "Time to answer an HTTP request, by route.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}, []string{"route"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Name: "flmngr_http_streams",
			Help: "Server-Sent Events streams open."}),
		followers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "flmngr_http_stream_followers",
			Help: "JetStream consumers that the open streams share: one per stream and filter."}),
		limited: prometheus.NewCounter(prometheus.CounterOpts{Name: "flmngr_client_requests_limited_total",
			Help: "Client agent requests refused for going over their rate limit."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "flmngr_requests_refused_total",
			Help: "Requests dropped unanswered because their reply subject was not the requester's own inbox (an attack, or a broken client)."}),
		diskFree: prometheus.NewGauge(prometheus.GaugeOpts{Name: "flmngr_data_volume_free_bytes",
			Help: "Free space of the cloud's data volume."}),
		diskLow: prometheus.NewGauge(prometheus.GaugeOpts{Name: "flmngr_data_volume_low",
			Help: "1 while the data volume's free space is below its watermark and commands are refused (an alarm)."}),
		legacyOpen: prometheus.NewGauge(prometheus.GaugeOpts{Name: "flmngr_legacy_open",
			Help: "1 while the original system's endpoints may be called without the admin token from the networks of --legacy-open."}),
		legacyCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flmngr_legacy_calls_total",
			Help: "Calls of the original system's endpoints let in without the admin token (legacy mode), by endpoint."}, []string{"endpoint"}),
	}
	m.reg.MustRegister(m.appended, m.commands, m.spawns, m.exits, m.http, m.streams, m.followers, m.limited, m.refused, m.diskFree, m.diskLow, m.legacyOpen, m.legacyCalls,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if views != nil {
		m.reg.MustRegister(&stateCollector{views: views})
	}
	return m
}

// Gather returns the current values, as /metrics serves them.
func (m *Metrics) Gather() ([]*dto.MetricFamily, error) { return m.reg.Gather() }

// Refused counts a request dropped for its reply subject.
func (m *Metrics) Refused(string) {
	if m != nil {
		m.refused.Inc()
	}
}

// Disk records the data volume's free space and whether it is below its
// watermark.
func (m *Metrics) Disk(free uint64, low bool) {
	if m == nil {
		return
	}
	m.diskFree.Set(float64(free))
	if low {
		m.diskLow.Set(1)
	} else {
		m.diskLow.Set(0)
	}
}

// LegacyOpen records whether legacy mode is on.
func (m *Metrics) LegacyOpen(on bool) {
	if m == nil {
		return
	}
	if on {
		m.legacyOpen.Set(1)
	} else {
		m.legacyOpen.Set(0)
	}
}

// LegacyCall counts a call of one of the original's endpoints let in
// without the admin token; endpoint is one of a fixed set of names.
func (m *Metrics) LegacyCall(endpoint string) {
	if m != nil {
		m.legacyCalls.WithLabelValues(endpoint).Inc()
	}
}

// Appended counts appended events.
func (m *Metrics) Appended(envs []events.Envelope) {
	if m == nil {
		return
	}
	for _, e := range envs {
		m.appended.WithLabelValues(e.Type).Inc()
	}
}

// Limited counts a client request refused by the rate limit. (Client ids
// are not labels: their number is unbounded.)
func (m *Metrics) Limited(string) {
	if m != nil {
		m.limited.Inc()
	}
}

// Command observes one request to a NATS endpoint.
func (m *Metrics) Command(endpoint string, d time.Duration, failed bool) {
	if m == nil {
		return
	}
	outcome := "ok"
	if failed {
		outcome = "error"
	}
	m.commands.WithLabelValues(endpoint, outcome).Observe(d.Seconds())
}

// Spawned counts a server process started.
func (m *Metrics) Spawned() {
	if m != nil {
		m.spawns.Inc()
	}
}

// Exited counts a server process that ended.
func (m *Metrics) Exited(outcome string) {
	if m != nil {
		m.exits.WithLabelValues(outcome).Inc()
	}
}

// HTTP observes an HTTP request.
func (m *Metrics) HTTP(route string, d time.Duration) {
	if m != nil {
		m.http.WithLabelValues(route).Observe(d.Seconds())
	}
}

// StreamOpened and StreamClosed track open event streams.
func (m *Metrics) StreamOpened() {
	if m != nil {
		m.streams.Inc()
	}
}

func (m *Metrics) StreamClosed() {
	if m != nil {
		m.streams.Dec()
	}
}

// FollowerStarted and FollowerStopped track the consumers streams share.
func (m *Metrics) FollowerStarted() {
	if m != nil {
		m.followers.Inc()
	}
}

func (m *Metrics) FollowerStopped() {
	if m != nil {
		m.followers.Dec()
	}
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// stateCollector reads tasks by state and clients online from the views
// at scrape time.
type stateCollector struct{ views Views }

var (
	tasksDesc   = prometheus.NewDesc("flmngr_tasks", "Tasks by state.", []string{"state"}, nil)
	clientsDesc = prometheus.NewDesc("flmngr_clients", "Registered clients, online or not.", []string{"online"}, nil)
	deadDesc    = prometheus.NewDesc("flmngr_dead_letters", "Messages of the event log that are no readable event, set aside by the views (anything above 0 is an alarm).", nil, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- tasksDesc
	ch <- clientsDesc
	ch <- deadDesc
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	if ts, err := c.views.Tasks(projections.TaskFilter{}); err == nil {
		count := map[string]float64{}
		for _, t := range ts {
			count[string(t.Status)]++
		}
		for _, s := range []string{"idle", "start_requested", "running", "stop_requested", "stopped", "finished", "errored", "interrupted"} {
			ch <- prometheus.MustNewConstMetric(tasksDesc, prometheus.GaugeValue, count[s], s)
		}
	}
	if cs, err := c.views.Clients(); err == nil {
		var on, off float64
		for _, cl := range cs {
			if cl.Online {
				on++
			} else {
				off++
			}
		}
		ch <- prometheus.MustNewConstMetric(clientsDesc, prometheus.GaugeValue, on, "true")
		ch <- prometheus.MustNewConstMetric(clientsDesc, prometheus.GaugeValue, off, "false")
	}
	if n, _, err := c.views.DeadLetters(); err == nil {
		ch <- prometheus.MustNewConstMetric(deadDesc, prometheus.GaugeValue, float64(n))
	}
}
