Feature: Durability and rebuilds
  Everything is an event in the log. Restarting flmngr finds everything as
  it was, and the views rebuilt from the log are the views built event by
  event.

  Background:
    Given a running flmngr
    And a task "4fe5" for clients where "camera" in sensors
    And a task "E" whose client errors at once
    And the operator ran flmngr task start 4fe5
    And the operator ran flmngr user register guilhermeeec --sensors camera,ecu
    And the operator ran flmngr task update E --port 8082
    And task "4fe5" becomes "running"
    And client "guilhermeeec" is offered "4fe5"

  Scenario: A restart keeps everything and tells the truth about running tasks
    When flmngr is restarted
    Then task "4fe5" has status "interrupted"
    And task "4fe5" is not running
    And task "E" has port 8082
    When the operator runs flmngr user get guilhermeeec
    Then the output shows "sensors" as "camera, ecu"
    When the operator runs flmngr task start 4fe5
    Then the command succeeds
    And task "4fe5" becomes "running"

  Scenario: Rebuilt views equal the incrementally built ones
    Given the views are caught up
    When the operator runs flmngr rebuild
    Then the command succeeds
    And the rebuilt views equal the incremental ones byte for byte

  Scenario: The timeline shows every step in order
    When the operator runs flmngr timeline 4fe5
    Then the command succeeds
    And the output lists "task.created.v1" before "task.start_requested.v1"
    And the output lists "task.start_requested.v1" before "task.server_started.v1"
