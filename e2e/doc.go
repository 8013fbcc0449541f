// Package e2e tests the deployed shop: from nothing, `make up` brings the
// whole cluster up on this machine (Consul, Nomad, every job, through
// Terraform), the tests drive it from outside as a buyer, a seller and an
// operator would — through HAProxy, the Nomad and Consul APIs, Consul DNS
// and signals to the tasks — and `make down` must leave nothing behind.
//
// The suite runs its own cluster on free ports with its own Terraform state
// and state folder, so a developer's `make up` is left alone. It is run by
// `make e2e`; the test binary needs the repository (for make, Terraform and
// the job files) and the tools `make tools` installs.
//
// Set E2E_STEPS to a regular expression to run only the steps whose names
// it matches (the cluster is still brought up and down): for example
// E2E_STEPS='hostile|internal' scripts/e2e.sh.
//
// Set E2E_KEEP=1 to leave the cluster running after a failure, to look at
// it (its addresses are logged; `make down` with the logged TF_STATE_FILE
// and TF_VAR_state_dir removes it).
package e2e
