# The cluster, the task definition and the service. No load balancer unless the operator console
# is enabled (console.tf): otherwise nothing calls the agent but Prometheus, which scrapes each
# task's /metrics on the HTTP port.

resource "aws_ecs_cluster" "agent" {
  name = "${var.name}-agent"

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

locals {
  environment = merge(
    {
      AWS_REGION                       = var.region
      AWS_DEFAULT_REGION               = var.region
      AIOPS_QUEUE_URL                  = aws_sqs_queue.events.url
      AIOPS_INCIDENT_TABLE             = aws_dynamodb_table.incidents.name
      AIOPS_PATTERNS_TABLE             = aws_dynamodb_table.patterns.name
      AIOPS_SNS_TOPIC_ARN              = aws_sns_topic.notifications.arn
      AIOPS_CODEBUILD_PROJECT          = var.codebuild_project
      AIOPS_MODE                       = var.mode
      AIOPS_ANALYZER                   = var.analyzer
      AIOPS_MODEL_ID                   = var.model_id
      AIOPS_LOG_GROUPS                 = join(",", var.log_groups)
      AIOPS_TRUSTED_PRINCIPALS         = join(",", var.trusted_principals)
      AIOPS_HTTP_HOST                  = "0.0.0.0"
      AIOPS_HTTP_PORT                  = tostring(var.http_port)
      AIOPS_LOG_FORMAT                 = "json"
      AIOPS_VISIBILITY_TIMEOUT_SECONDS = tostring(local.visibility_timeout)
    },
    local.console_environment,
    var.extra_environment,
  )

  # The Dockerfile's HEALTHCHECK, which ECS does not read: ask /healthz with the standard library.
  health_command = "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('AIOPS_HTTP_PORT', '8080') + '/healthz', timeout=4)"
}

resource "aws_ecs_task_definition" "agent" {
  family                   = "${var.name}-agent"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  task_role_arn            = aws_iam_role.task.arn
  execution_role_arn       = aws_iam_role.execution.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  # Writable scratch space on the task's ephemeral storage: the root filesystem is read-only.
  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([
    {
      name                   = local.container_name
      image                  = "${aws_ecr_repository.agent.repository_url}:${var.image_tag}"
      essential              = true
      user                   = "10001:10001"
      readonlyRootFilesystem = true
      privileged             = false
      stopTimeout            = 30 # SIGTERM, then 30 s to drain before SIGKILL
      portMappings           = [{ containerPort = var.http_port, protocol = "tcp" }]
      environment            = [for key in sort(keys(local.environment)) : { name = key, value = local.environment[key] }]
      mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
      linuxParameters        = { capabilities = { drop = ["ALL"] } }
      healthCheck = {
        command     = ["CMD", "python", "-c", local.health_command]
        interval    = 15
        timeout     = 5
        retries     = 3
        startPeriod = 30
      }
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.agent.name
          awslogs-region        = var.region
          awslogs-stream-prefix = "agent"
          mode                  = "non-blocking"
          max-buffer-size       = "4m"
        }
      }
    }
  ])

  lifecycle {
    precondition {
      condition     = alltrue([for group in var.log_groups : startswith(group, var.log_group_prefix)])
      error_message = "Every entry of log_groups must start with log_group_prefix: the task role may only query those."
    }
  }
}

resource "aws_security_group" "agent" {
  name        = "${var.name}-agent"
  description = "aiops-agent tasks: HTTPS out to AWS APIs; HTTP port in from the metrics scrapers"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.agent.id
  description       = "AWS APIs (SQS, DynamoDB, SNS, ...) over HTTPS"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_ingress_rule" "metrics" {
  for_each          = toset(var.metrics_ingress_cidrs)
  security_group_id = aws_security_group.agent.id
  description       = "Prometheus scrapes /metrics"
  ip_protocol       = "tcp"
  from_port         = var.http_port
  to_port           = var.http_port
  cidr_ipv4         = each.value
}

resource "aws_ecs_service" "agent" {
  name                               = "${var.name}-agent"
  cluster                            = aws_ecs_cluster.agent.id
  task_definition                    = aws_ecs_task_definition.agent.arn
  desired_count                      = var.min_tasks
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  enable_ecs_managed_tags            = true
  propagate_tags                     = "SERVICE"
  enable_execute_command             = false
  wait_for_steady_state              = false

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  dynamic "load_balancer" {
    for_each = aws_lb_target_group.console
    content {
      target_group_arn = load_balancer.value.arn
      container_name   = local.container_name
      container_port   = var.http_port
    }
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.agent.id]
    assign_public_ip = false
  }

  lifecycle {
    ignore_changes = [desired_count] # owned by the auto scaling below
  }

  # With the console on, the target group must be behind a listener before the service uses it.
  depends_on = [aws_lb_listener_rule.console]
}
