//! csp-harness: the command line and everything that touches the network.
