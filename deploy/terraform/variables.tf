variable "region" {
  description = "AWS region of the agent and of everything it creates."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Prefix of every resource name."
  type        = string
  default     = "aiops"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name: 2-21 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

# ------------------------------------------------------------------ network

variable "vpc_id" {
  description = "VPC of the service."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the tasks (with a NAT gateway or VPC endpoints to reach AWS APIs)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "subnet_ids: at least one subnet."
  }
}

variable "metrics_ingress_cidrs" {
  description = "CIDRs allowed to scrape /metrics and probe /healthz on the HTTP port (your Prometheus)."
  type        = list(string)
  default     = []
}

# ------------------------------------------------------------------ the task

variable "image_tag" {
  description = "Tag of the agent image in the ECR repository this module creates (docs/DEPLOY.md pushes it)."
  type        = string
  default     = "0.1.0"
}

variable "cpu" {
  description = "Task CPU units."
  type        = number
  default     = 512
}

variable "memory" {
  description = "Task memory (MiB)."
  type        = number
  default     = 1024
}

variable "min_tasks" {
  description = "Fewest running tasks (replicas share the queue; DynamoDB keeps them from doing the same work)."
  type        = number
  default     = 1
}

variable "max_tasks" {
  description = "Most running tasks when the queue backs up."
  type        = number
  default     = 4
}

variable "scale_out_queue_depth" {
  description = "Visible messages in the event queue above which a task is added."
  type        = number
  default     = 100
}

variable "http_port" {
  description = "AIOPS_HTTP_PORT: /healthz, /readyz and /metrics."
  type        = number
  default     = 8080
}

variable "log_retention_days" {
  description = "Retention of the agent's own log group."
  type        = number
  default     = 365
}

# ------------------------------------------------------------------ the agent's settings

variable "mode" {
  description = "AIOPS_MODE: active, or shadow (decide and record everything, change nothing)."
  type        = string
  default     = "shadow"

  validation {
    condition     = contains(["active", "shadow"], var.mode)
    error_message = "mode: active or shadow."
  }
}

variable "analyzer" {
  description = "AIOPS_ANALYZER: rules or bedrock."
  type        = string
  default     = "rules"

  validation {
    condition     = contains(["rules", "bedrock"], var.analyzer)
    error_message = "analyzer: rules or bedrock."
  }
}

variable "model_id" {
  description = "AIOPS_MODEL_ID: the Bedrock model (or inference profile) the bedrock analyzer may invoke."
  type        = string
  default     = "anthropic.claude-3-5-sonnet-20240620-v1:0"
}

variable "codebuild_project" {
  description = "AIOPS_CODEBUILD_PROJECT: your IaC recovery project; the task role may start builds of it only."
  type        = string
  default     = "aiops-recovery"
}

variable "log_groups" {
  description = "AIOPS_LOG_GROUPS: log groups the log analyzer watches (a trailing * is a prefix). Each must start with log_group_prefix."
  type        = list(string)
  default     = []
}

variable "log_group_prefix" {
  description = "The task role may query log groups whose names start with this (empty: every log group of the account in the region)."
  type        = string
  default     = ""
}

variable "trusted_principals" {
  description = "AIOPS_TRUSTED_PRINCIPALS: ARNs (glob) whose changes are intended, e.g. your deploy pipeline's role."
  type        = list(string)
  default     = []
}

variable "extra_environment" {
  description = "More AIOPS_* settings for the container (see CONTRACT.md), e.g. AIOPS_COOLDOWN_MINUTES."
  type        = map(string)
  default     = {}
}

# ------------------------------------------------------------------ the operator console (off)

variable "console_enabled" {
  description = "Put the operator console (/console/*) behind an internal ALB with OIDC sign-in."
  type        = bool
  default     = false
}

variable "console_ingress_cidrs" {
  description = "CIDRs allowed to reach the console ALB on 443 (VPN, office, bastion networks)."
  type        = list(string)
  default     = []
}

variable "console_subnet_ids" {
  description = "Subnets of the internal console ALB (two or more AZs); empty: subnet_ids."
  type        = list(string)
  default     = []
}

variable "console_certificate_arn" {
  description = "ACM certificate of the console's HTTPS listener (required with console_enabled)."
  type        = string
  default     = ""
}

variable "console_oidc" {
  description = "The identity provider of the ALB's authenticate-oidc action (required with console_enabled)."
  type = object({
    issuer                 = string
    authorization_endpoint = string
    token_endpoint         = string
    user_info_endpoint     = string
    client_id              = string
  })
  default = null
}

variable "console_oidc_client_secret" {
  description = "The OIDC client's secret (pass it with TF_VAR_console_oidc_client_secret)."
  type        = string
  default     = ""
  sensitive   = true
}

variable "console_session_seconds" {
  description = "How long the ALB's OIDC session lasts before the user signs in again."
  type        = number
  default     = 43200
}

variable "console_url" {
  description = "The console's public base URL (https://console.example.com): notifications link to incidents."
  type        = string
  default     = ""
}

variable "console_access_logs_bucket" {
  description = "S3 bucket for the console ALB's access logs (empty: none)."
  type        = string
  default     = ""
}

variable "console_deletion_protection" {
  description = "Deletion protection on the console ALB."
  type        = bool
  default     = true
}
