# The commands README.md gives. Run them as root on a Debian 12 machine; lint and test-app
# need only the controller venv that bootstrap makes (make bootstrap once, as root).
.PHONY: up down test lint test-app bootstrap

up:         ## Provision the app on a local test host, served on http://127.0.0.1:8080/
	scripts/up.sh

down:       ## Remove every test host this project started
	scripts/down.sh

test:       ## Lint, Python tests, Molecule scenarios (FACE_REC_SCENARIOS="default" for some only)
	scripts/test.sh

lint:       ## yamllint, ansible-lint, the roles' variables tables (needs make bootstrap once)
	scripts/lint.sh

test-app:   ## The app's tests only (tests/app), no test host (needs make bootstrap once)
	scripts/test-app.sh

bootstrap:  ## Debian packages, controller venv, Docker engine, test-host image
	scripts/bootstrap.sh
