Feature: Shutting the cloud down
  SIGTERM to flmngr stops every server process it runs and records their
  runs as interrupted: nothing is left running, nothing is marked running.

  Scenario: SIGTERM to the cloud leaves no orphan process and no task marked running
    Given a running flmngr process
    And a task "A" for every client
    And the operator ran flmngr task start A
    And the server process of task "A" is running
    When flmngr gets SIGTERM
    Then the server process of task "A" is gone
    When flmngr is started again
    Then task "A" has status "interrupted"
    And task "A" is not running
    When the operator runs flmngr task start A
    Then the command succeeds
    And task "A" becomes "running"
