// Package deploy holds the systemd units of the cloud
// (flmngr-cloud.service) and of an edge site's agent
// (flmngr-agent.service, with agent.env for its flags), as shipped in
// release builds; its tests verify them. See docs/operations.md.
package deploy
