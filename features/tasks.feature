Feature: Registering and managing tasks
  An operator registers federated-learning tasks with the original's
  create-task form, reads them back, changes and removes them. Every change
  is an event; bad input is refused with an error naming the field and
  nothing is stored.

  Background:
    Given a running flmngr

  Scenario: Create a task and get it back
    When the operator runs flmngr task create 4fe5 --host localhost --port 8080 --username user --password s3cret-Pa55 --files client.py,task.py --criterion '"camera" in sensors' --tags mnist,MLP,test
    Then the command succeeds
    And 1 event was appended
    When the operator runs flmngr task get 4fe5
    Then the command succeeds
    And the output shows "status" as "idle"
    And the output shows "running" as "false"
    And the output shows "port" as "8080"
    And the output shows "selection_criteria" as '"camera" in sensors'
    And the output shows "tags" as "mnist, MLP, test"
    And the output shows "files_paths" as "client.py, task.py"
    And the output shows "client_arguments" as "null"
    And the output does not contain "s3cret-Pa55"
    And no event or view contains "s3cret-Pa55" in clear

  Scenario: A duplicate task ID is a conflict
    Given the operator ran flmngr task create 4fe5 --host localhost --port 8080
    When the operator runs flmngr task create 4fe5 --host other --port 9090
    Then the command fails with "task 4fe5 already exists"
    And no event was appended
    And task "4fe5" has port 8080

  Scenario Outline: Invalid fields are refused, naming the field
    When the operator runs flmngr task create <id> --host <host> --port <port> --files <files>
    Then the command fails with "<message>"
    And no event was appended

    Examples:
      | id        | host      | port  | files          | message                                       |
      | ../etc    | localhost | 8080  | client.py      | task_id                                       |
      | ok        | ''        | 8080  | client.py      | host is required                              |
      | ok        | localhost | 0     | client.py      | port must be between 1 and 65535              |
      | ok        | localhost | 70000 | client.py      | port must be between 1 and 65535              |
      | ok        | localhost | 8080  | /etc/passwd    | must be relative |
      | ok        | localhost | 8080  | ../x.py        | escapes the task directory                    |

  Scenario Outline: An invalid selection criterion is refused and never stored
    When the operator runs flmngr task create t1 --host localhost --port 8080 --criterion '<criterion>'
    Then the command fails with "<message>"
    And no event was appended
    And there is no task "t1"

    Examples:
      | criterion           | message                                 |
      | aaaaa               | selection_criteria: invalid selection criterion: unknown name aaaaa |
      | data_qnt >          | selection_criteria: invalid selection criterion |
      | data_qnt            | expected bool                           |

  Scenario: Update changes only the given fields
    Given the operator ran flmngr task create 4fe5 --host localhost --port 8080 --criterion '"camera" in sensors' --tags mnist
    When the operator runs flmngr task update 4fe5 --port 8081 --criterion 'data_qnt > 50'
    Then the command succeeds
    And 1 event was appended
    And task "4fe5" has port 8081
    When the operator runs flmngr task get 4fe5
    Then the output shows "selection_criteria" as "data_qnt > 50"
    And the output shows "tags" as "mnist"
    And the output shows "host" as "localhost"

  Scenario: An update that changes nothing appends nothing
    Given the operator ran flmngr task create 4fe5 --host localhost --port 8080
    When the operator runs flmngr task update 4fe5 --port 8080
    Then the command succeeds
    And the output contains "unchanged"
    And no event was appended

  Scenario: An update with a bad criterion keeps the old one
    Given the operator ran flmngr task create 4fe5 --host localhost --port 8080 --criterion '"camera" in sensors'
    When the operator runs flmngr task update 4fe5 --criterion 'sensors +'
    Then the command fails with "selection_criteria"
    And no event was appended
    When the operator runs flmngr task get 4fe5
    Then the output shows "selection_criteria" as '"camera" in sensors'

  Scenario: Updating or deleting an unknown task
    When the operator runs flmngr task update zzzz --port 1
    Then the command fails with "task zzzz not found"
    When the operator runs flmngr task delete zzzz
    Then the command fails with "task zzzz not found"

  Scenario: Delete a task and register its ID again
    Given the operator ran flmngr task create 4fe5 --host localhost --port 8080
    When the operator runs flmngr task delete 4fe5
    Then the command succeeds
    And there is no task "4fe5"
    When the operator runs flmngr task create 4fe5 --host localhost --port 9000
    Then the command succeeds
    And task "4fe5" has port 9000

  Scenario: List tasks in creation order, filtered by tag
    Given the operator ran flmngr task create b --host h --port 1 --tags x
    And the operator ran flmngr task create a --host h --port 2 --tags y
    And the operator ran flmngr task create c --host h --port 3 --tags x,y
    When the operator runs flmngr task list --tag x
    Then the command succeeds
    And the listed tasks are "b, c"
