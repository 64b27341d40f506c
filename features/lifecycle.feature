Feature: Start and stop rules
  Starting a task asks the cloud to run its server; stopping asks it to
  stop. Requests that make no sense in the task's state are conflicts that
  leave the state as it was.

  Background:
    Given a running flmngr
    And a task "4fe5" for every client

  Scenario: Start a task
    When the operator runs flmngr task start 4fe5
    Then the command succeeds
    And task "4fe5" becomes "running"
    And task "4fe5" is running

  Scenario: Starting a started task is a conflict that leaves it started
    Given the operator ran flmngr task start 4fe5
    When the operator runs flmngr task start 4fe5
    Then the command fails with "task 4fe5 is already running"
    And task "4fe5" becomes "running"
    And task "4fe5" is running

  Scenario: Stop a started task
    Given the operator ran flmngr task start 4fe5
    And task "4fe5" becomes "running"
    When the operator runs flmngr task stop 4fe5
    Then the command succeeds
    And task "4fe5" becomes "stopped"
    And task "4fe5" is not running

  Scenario: Stopping a task that is not running is a conflict
    When the operator runs flmngr task stop 4fe5
    Then the command fails with "task 4fe5 is not running"
    And no event was appended
    And task "4fe5" has status "idle"

  Scenario: Unknown tasks
    When the operator runs flmngr task start zzzz
    Then the command fails with "task zzzz not found"
    When the operator runs flmngr task stop zzzz
    Then the command fails with "task zzzz not found"

  Scenario: A started task cannot be deleted
    Given the operator ran flmngr task start 4fe5
    When the operator runs flmngr task delete 4fe5
    Then the command fails with "stop it before deleting it"
    And task "4fe5" is running

  Scenario: Start with arguments for this run
    When the operator runs flmngr task start 4fe5 --arguments '--rounds 3'
    Then the command succeeds
    And task "4fe5" runs with server arguments "--rounds 3"

  Scenario: A task whose server was never uploaded cannot start
    Given the operator ran flmngr task create bare --host localhost --port 8080
    When the operator runs flmngr task start bare
    Then the command fails with "task bare has no server.py: upload it first"
    And no event was appended
    And task "bare" has status "idle"
