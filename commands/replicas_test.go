package commands_test

import (
	"context"
	"testing"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
)

// TestStaleCacheDecidesOnTheLog: a replica whose cached state is behind
// what another replica appended must not reject a command, or decide that
// it changes nothing, on that cached state.
func TestStaleCacheDecidesOnTheLog(t *testing.T) {
	ctx := context.Background()
	log := openLog(t)
	a := commands.NewHandler(log, commands.Config{Source: "a", HashPassword: fastHash})
	b := commands.NewHandler(log, commands.Config{Source: "b", HashPassword: fastHash})
	if _, err := a.Execute(ctx, &commands.CreateTask{TaskID: "t1", Host: "localhost", Port: 8080, ServerCommand: []string{"sleep", "60"}}); err != nil {
		t.Fatal(err)
	}

	// b changes the port; a, which cached the old port, sets it back.
	if _, err := b.Execute(ctx, commands.UpdateTask{TaskID: "t1", Port: new(9000)}); err != nil {
		t.Fatal(err)
	}
	res, err := a.Execute(ctx, commands.UpdateTask{TaskID: "t1", Port: new(8080)})
	if err != nil || len(res.Events) != 1 {
		t.Fatalf("port set back by a replica that cached it unchanged: %+v %v", res, err)
	}

	// b starts the task that a has cached as idle; a's supervisor then
	// records that it started the run's server.
	if _, err := b.Execute(ctx, commands.StartTask{TaskID: "t1"}); err != nil {
		t.Fatal(err)
	}
	res, err = a.Execute(ctx, commands.RecordRun{TaskID: "t1", Event: &events.TaskServerStarted{Run: "1", PID: 1, Supervisor: "a"}})
	if err != nil || len(res.Events) != 1 {
		t.Fatalf("server started, recorded by a replica that cached the task idle: %+v %v", res, err)
	}
}
