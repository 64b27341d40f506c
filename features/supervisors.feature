Feature: Running tasks on the cloud and on clients
  Starting a task runs its server on the cloud; every matching client's
  agent is told at once, downloads and verifies the task's files and runs
  the client process. The supervisors read what the processes report: a
  finished task becomes inactive on both sides, an error on a client
  quarantines the task there and the client fails over to its next task.

  Background:
    Given a running flmngr

  Scenario: Start runs the server and the client process of a matching client
    Given a task "A" for clients where "camera" in sensors
    And a client "c1" with sensors "camera,ecu"
    When the operator runs flmngr task start A
    Then task "A" becomes "running"
    And the server process of task "A" is running
    And client "c1" runs task "A"
    And the client process of task "A" on "c1" is running

  Scenario: A client that does not match runs nothing
    Given a task "A" for clients where "camera" in sensors
    And a client "c1" with sensors "camera"
    And a client "c2" with sensors "ecu"
    When the operator runs flmngr task start A
    Then client "c1" runs task "A"
    And client "c2" is offered nothing
    And client "c2" runs nothing
    When the operator runs flmngr match --criterion '"camera" in sensors'
    Then the output contains "1 of 2 clients selected"

  Scenario: Stop stops both sides
    Given a task "A" for every client
    And a client "c1" with sensors "camera"
    And the operator ran flmngr task start A
    And client "c1" runs task "A"
    And the server process of task "A" is running
    When the operator runs flmngr task stop A
    Then task "A" becomes "stopped"
    And the server process of task "A" is gone
    And the client process of task "A" on "c1" is gone
    And client "c1" runs nothing
    And client "c1" has not quarantined task "A"

  Scenario: A finished task is inactive on both sides and can be started again
    Given a task "A" for every client
    And a client "c1" with sensors "camera"
    And the operator ran flmngr task start A
    And client "c1" runs task "A"
    When the client of task "A" on "c1" is told to finish
    Then client "c1" finished task "A"
    When the server of task "A" is told to finish
    Then task "A" becomes "finished"
    And task "A" is not running
    And task "A" completed round 2 with accuracy 0.8
    And the server process of task "A" is gone
    And client "c1" runs nothing
    When the operator runs flmngr task start A
    Then the command succeeds
    And task "A" becomes "running"
    And client "c1" runs task "A"

  Scenario: A server that reports an error ends the run
    Given a task "A" for every client
    And a client "c1" with sensors "camera"
    And the operator ran flmngr task start A
    And client "c1" runs task "A"
    When the server of task "A" is told to fail
    Then task "A" becomes "errored"
    And the output of task get "A" shows "last_error" as "server failed"
    And the server process of task "A" is gone
    And client "c1" runs nothing

  Scenario: A server that exits without a report is an error
    Given a task "A" for every client
    And the operator ran flmngr task start A
    And task "A" becomes "running"
    When the server of task "A" is told to crash
    Then task "A" becomes "errored"
    And the output of task get "A" shows "last_error" as "the server exited without reporting Finished or an error (exit code 7)"

  Scenario: A client error quarantines the task and fails over to the next at once
    Given a task "E" whose client errors at once
    And a task "C" for every client
    And the operator ran flmngr task start E
    And the operator ran flmngr task start C
    When a client "c1" with sensors "camera" starts
    Then client "c1" runs task "C"
    And client "c1" has quarantined task "E"
    And the events of client "c1" are, in order:
      | type                       | task |
      | client.task_started.v1     | E    |
      | client.task_running.v1     | E    |
      | client.task_errored.v1     | E    |
      | client.task_quarantined.v1 | E    |
      | client.task_downloaded.v1  | C    |
      | client.task_started.v1     | C    |
      | client.task_running.v1     | C    |

  Scenario: A client process that crashes without a report is an error
    Given a task "X" whose client crashes at once
    And a task "C" for every client
    And the operator ran flmngr task start X
    And the operator ran flmngr task start C
    When a client "c1" with sensors "camera" starts
    Then client "c1" runs task "C"
    And client "c1" has quarantined task "X"
    And the last error of task "X" on client "c1" mentions "exited without reporting Finished or an error"

  Scenario: Files whose bytes do not match their digest are never run on a client
    Given a task "A" for every client
    And the operator ran flmngr task start A
    And task "A" becomes "running"
    And the stored file "client.sh" of task "A" is tampered with
    When a client "c1" with sensors "camera" starts
    Then client "c1" has quarantined task "A"
    And the last error of task "A" on client "c1" mentions "digest mismatch"
    And client "c1" never started task "A"

  Scenario: Files whose bytes do not match their digest are never run on the cloud
    Given a task "A" for every client
    And the stored file "server.sh" of task "A" is tampered with
    When the operator runs flmngr task start A
    Then task "A" becomes "errored"
    And the last error of task "A" mentions "cannot start the server: task files: fetch server.sh: digest mismatch"

  Scenario: A missing trigger is harmless
    Given a task "A" for every client
    And the server of task "A" fires trigger "notify" when it finishes
    And the operator ran flmngr task start A
    And task "A" becomes "running"
    When the server of task "A" is told to finish
    Then task "A" becomes "finished"
    And trigger "notify" of task "A" ran with error "not found"

  Scenario: A trigger runs with its arguments as one argument
    Given a task "A" for every client
    And the server of task "A" fires trigger "notify" when it finishes, and the trigger exists
    And the operator ran flmngr task start A
    And task "A" becomes "running"
    When the server of task "A" is told to finish
    Then task "A" becomes "finished"
    And trigger "notify" of task "A" ran with exit code 0
    And the trigger of task "A" got one argument "0.8 reached"

  Scenario: Policy one runs one task at a time
    Given a task "A" for every client
    And a task "B" for every client
    And the operator ran flmngr task start A
    And the operator ran flmngr task start B
    When a client "c1" with sensors "camera" starts
    Then client "c1" is offered "A, B"
    And client "c1" runs task "A"
    And client "c1" runs 1 task
    When the client of task "A" on "c1" is told to finish
    Then client "c1" runs task "B"
    And client "c1" runs 1 task

  Scenario: Policy all runs every offered task
    Given a task "A" for every client
    And a task "B" for every client
    And the operator ran flmngr task start A
    And the operator ran flmngr task start B
    When a client "c1" with sensors "camera" and policy "all" starts
    Then client "c1" runs task "A"
    And client "c1" runs task "B"
    And client "c1" runs 2 tasks

  Scenario: A change of attributes brings new offers
    Given a task "A" for clients where "camera" in sensors
    And a client "c2" with sensors "ecu"
    And the operator ran flmngr task start A
    And task "A" becomes "running"
    When the operator runs flmngr user report c2 --sensors camera,ecu
    Then client "c2" runs task "A"

  Scenario: A restarted agent keeps its quarantine
    Given a task "E" whose client errors at once
    And a task "C" for every client
    And the operator ran flmngr task start E
    And the operator ran flmngr task start C
    And a client "c1" with sensors "camera"
    And client "c1" runs task "C"
    And client "c1" has quarantined task "E"
    When the agent of "c1" is restarted
    Then client "c1" runs task "C"
    And client "c1" never started task "E" again

  Scenario: Restarting a task lifts its quarantine
    Given a task "E" whose client errors at once
    And the operator ran flmngr task start E
    And a client "c1" with sensors "camera"
    And client "c1" has quarantined task "E"
    When the operator runs flmngr task stop E
    And task "E" becomes "stopped"
    And the operator runs flmngr task update E --client-args ''
    And the operator runs flmngr task start E
    Then client "c1" runs task "E"

  Scenario: SIGTERM to the agent leaves no orphan process and no task marked running
    Given a task "A" for every client
    And a client "c1" with sensors "camera"
    And the operator ran flmngr task start A
    And client "c1" runs task "A"
    And client "c1" reported task "A" running
    When the agent of "c1" gets SIGTERM
    Then the client process of task "A" on "c1" is gone
    And client "c1" runs nothing
    And the events of client "c1" are, in order:
      | type                       | task |
      | client.task_started.v1     | A    |
      | client.task_running.v1     | A    |
      | client.task_interrupted.v1 | A    |
      | client.task_exited.v1      | A    |

  Scenario: A site that approves tasks runs one only once it approved exactly what runs
    Given a task "A" for every client
    And a client "c1" with sensors "camera" that approves tasks manually
    When the operator runs flmngr task start A
    Then client "c1" awaits approval of task "A"
    And client "c1" never started task "A"
    And client "c1" has not quarantined task "A"
    When the operator runs flmngr user get c1
    Then the output contains "A/1 at site c1"
    When the site of "c1" runs flmngr client approvals
    Then the output contains "pending"
    When the site of "c1" runs flmngr client approve ../A --yes
    Then the command fails with "must be 1-64 letters"
    And client "c1" never started task "A"
    When the site of "c1" runs flmngr client approve A --yes
    Then the command succeeds
    And the output contains "approved task A"
    And client "c1" runs task "A"
    And the client process of task "A" on "c1" is running
