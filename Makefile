# The commands README.md gives. Run them as root on a Debian 12 machine.
.PHONY: up down test lint bootstrap

up:         ## Provision the app on a local test host, served on http://127.0.0.1:8080/
	scripts/up.sh

down:       ## Remove every test host this project started
	scripts/down.sh

test:       ## Lint, Python tests, Molecule scenarios
	scripts/test.sh

bootstrap:  ## Debian packages, controller venv, Docker engine, test-host image
	scripts/bootstrap.sh
