# aiops-agent on ECS Fargate: everything the daemon needs, in one root module.
# Step by step: docs/DEPLOY.md. The task role's policy (task_role_policy.json) and the EventBridge
# pattern (event_pattern.json) are generated from the code by generate.py; do not edit them.

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40, < 7.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge({ "app" = "aiops-agent", "managed-by" = "terraform" }, var.tags)
  }
}
