Feature: Clients (users) and their attributes
  A client registers its attributes and reports them again when they
  change. Selection criteria are evaluated against them.

  Background:
    Given a running flmngr

  Scenario: Register a client and read it back
    When the operator runs flmngr user register guilhermeeec --sensors camera,ecu --data-qnt 0
    Then the command succeeds
    When the operator runs flmngr user get guilhermeeec
    Then the output shows "sensors" as "camera, ecu"
    And the output shows "data_qnt" as "0"
    And the output shows "avg_acc_contrib" as "null"
    And the output shows "avg_disconnection_per_round" as "null"

  Scenario: Update an existing client
    Given the operator ran flmngr user register guilhermeeec --sensors camera,ecu
    When the operator runs flmngr user report guilhermeeec --data-qnt 5 --avg-acc-contrib 0.1 --avg-disconnection-per-round 0.2 --sensors rpi --attr gpu=true
    Then the command succeeds
    And 1 event was appended
    When the operator runs flmngr user get guilhermeeec
    Then the output shows "sensors" as "rpi"
    And the output shows "data_qnt" as "5"
    And the output shows "avg_acc_contrib" as "0.1"
    And the output shows "avg_disconnection_per_round" as "0.2"
    And the output shows "attrs.gpu" as "true"

  Scenario: A report that changes nothing appends nothing
    Given the operator ran flmngr user register guilhermeeec --sensors camera,ecu --data-qnt 3
    When the operator runs flmngr user report guilhermeeec --data-qnt 3
    Then the command succeeds
    And no event was appended

  Scenario: Unknown and duplicate clients
    When the operator runs flmngr user get nobody
    Then the command fails with "client nobody not found"
    When the operator runs flmngr user report nobody --data-qnt 1
    Then the command fails with "client nobody not found"
    Given the operator ran flmngr user register guilhermeeec
    When the operator runs flmngr user register guilhermeeec
    Then the command fails with "already registered"

  Scenario: Bad attributes are refused, naming the field
    When the operator runs flmngr user register c1 --data-qnt -4
    Then the command fails with "data_qnt must not be negative"
    When the operator runs flmngr user register 'a b'
    Then the command fails with "user_id"
    And no event was appended
