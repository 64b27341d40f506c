package commands

import (
	"slices"
	"testing"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
)

// TestTaskKind: the kind defaults to process (stored as none, as before
// kinds existed), a Flower App task gets the driver commands unless it
// names its own, an unknown kind is refused, and a task that stops being
// a Flower App loses the driver commands.
func TestTaskKind(t *testing.T) {
	base := CreateTask{TaskID: "t", Host: "127.0.0.1", Port: 9092}
	create := func(kind string, server []string) (events.TaskSpec, error) {
		c := base
		c.Kind, c.ServerCommand = kind, server
		evs, err := c.decide(TaskState{})
		if err != nil {
			return events.TaskSpec{}, err
		}
		return evs[0].(*events.TaskCreated).TaskSpec, nil
	}
	t.Run("default_is_process", func(t *testing.T) {
		s, err := create("", nil)
		if err != nil || s.Kind != "" || s.ServerCommand != nil || TaskKind(s) != KindProcess {
			t.Fatalf("%+v %v", s, err)
		}
		if s, _ := create("process", nil); s.Kind != "" {
			t.Fatalf("process is stored as %q, want none", s.Kind)
		}
	})
	t.Run("flower_app_gets_drivers", func(t *testing.T) {
		s, err := create(KindFlowerApp, nil)
		if err != nil || s.Kind != KindFlowerApp || !slices.Equal(s.ServerCommand, FlowerAppServerCommand) || !slices.Equal(s.ClientCommand, FlowerAppClientCommand) {
			t.Fatalf("%+v %v", s, err)
		}
		own := []string{"{flmngr}", "flower", "superlink", "--listen", "{host}:{port}", "--poll", "1s"}
		if s, _ := create(KindFlowerApp, own); !slices.Equal(s.ServerCommand, own) {
			t.Fatalf("own server command replaced: %q", s.ServerCommand)
		}
	})
	t.Run("unknown_kind_refused", func(t *testing.T) {
		if _, err := create("docker", nil); fault.KindOf(err) != fault.KindInvalid {
			t.Fatalf("kind docker: %v", err)
		}
	})
	t.Run("update_to_process_drops_drivers", func(t *testing.T) {
		s, _ := create(KindFlowerApp, nil)
		process := KindProcess
		evs, err := UpdateTask{TaskID: "t", Kind: &process}.decide(TaskState{Exists: true, Spec: s})
		if err != nil {
			t.Fatal(err)
		}
		u := evs[0].(*events.TaskUpdated)
		if u.Kind != "" || u.ServerCommand != nil || u.ClientCommand != nil || !slices.Contains(u.Changed, "kind") {
			t.Fatalf("%+v", u)
		}
	})
	t.Run("flower_app_needs_pyproject", func(t *testing.T) {
		s, _ := create(KindFlowerApp, nil)
		st := TaskState{Exists: true, Spec: s}
		if got := st.missingEntryPoint(); got != FlowerAppEntryPoint {
			t.Fatalf("missing %q, want %s", got, FlowerAppEntryPoint)
		}
	})
}
