package experiments

import (
	"time"
)

// OriginalEvent is the original system's event record, as its
// experiments' events.json held them.
type OriginalEvent struct {
	Time     float64 `json:"time"`
	Service  string  `json:"service"`
	Function string  `json:"function"`
	Event    string  `json:"event"`
}

type marker struct{ service, function, event string }

// The original's marker events of each step (start, end), in the order
// its exp1_process_results.py and exp2_process_results.py look for them.
var (
	exp1Markers = [][2]marker{
		{{"Operator", "register_task", "Started registering a task"}, {"service_cloud_ml", "rpc_exec_create_task", "Finished task creation"}},
		{{"Operator", "start_task", "Started starting a task"}, {"service_cloud_ml", "rpc_exec_start_server_task", "Finished server task initialization"}},
		{{"service_client_ml", "rpc_call_send_client_stats", "Started getting client stats for sending"}, {"service_user_manager", "rpc_exec_update_user_info", "Finished updating user info"}},
		{{"service_client_ml", "rpc_call_request_task", "Started requesting task"}, {"service_client_ml", "rpc_call_request_task", "Finished requesting task"}},
		{{"service_client_ml", "_run_task_one_policy", "Started downloading task"}, {"service_client_ml", "_run_task_one_policy", "Finished downloading task"}},
		{{"service_client_ml", "start_client_task", "Started client task initialization"}, {"task_client", "main", "Started client"}},
		{{"task_client", "main", "Finished client"}, {"service_client_ml", "finish_task", "Finished handling task finalization"}},
	}
	exp2Markers = [][2]marker{
		{{"service_client_ml", "start_client_task", "Started client task initialization"}, {"task_client", "main", "Started client"}},
		{{"task_client", "main", "Started client"}, {"task_client", "main", "Error!"}},
		{{"task_client", "main", "Error!"}, {"service_client_ml", "handle_error_from_task", "Finished handling error from task E"}},
		{{"service_client_ml", "rpc_call_request_task", "Started requesting task"}, {"service_client_ml", "rpc_call_request_task", "Finished requesting task"}},
		{{"service_client_ml", "_run_task_one_policy", "Started downloading task"}, {"service_client_ml", "_run_task_one_policy", "Finished downloading task"}},
		{{"service_client_ml", "start_client_task", "Started client task initialization"}, {"task_client", "main", "Started client"}},
	}
)

// Original turns a run's steps into the original's event records, sorted
// by time (ties keep the original's order), so its analysis scripts read
// flmngr's runs as they read its own.
func Original(kind string, r Run) []OriginalEvent {
	markers := exp1Markers
	if kind == Exp2 {
		markers = exp2Markers
	}
	var out []OriginalEvent
	type key struct {
		m  marker
		at time.Time
	}
	seen := map[key]bool{} // a boundary two steps share is one event
	for i, m := range markers {
		if i >= len(r.Found) || !r.Found[i] {
			continue
		}
		for j, mk := range m {
			k := key{mk, r.Marks[i][j]}
			if seen[k] {
				continue
			}
			seen[k] = true
			out = append(out, OriginalEvent{Time: epoch(r.Marks[i][j]), Service: mk.service, Function: mk.function, Event: mk.event})
		}
	}
	sortOriginal(out)
	return out
}

func epoch(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
